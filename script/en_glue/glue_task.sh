# Sourced by script/en_glue/<model>/<TASK>/task.sh after it sets the task's settings:
#   TASK BATCH LR EPOCH MAX_LEN SAVE_STEPS VAL_STEPS SKIP_STEPS METRIC NUM_LABELS RUNS
#   optional: DEV_SETS TEST_SETS TEST_SAVES (comma lists), EXTRA_FLAGS
# Runs fine-tuning RUNS times (2019 reported the mean of 5 runs), each logged to
# log/job.<run>.<lr>.<batch>.<epoch>.<timestamp>.log and predicting the test sets to output/.
# Run i trains with --random_seed i (run 1 with 2019's seed 1): with one seed for all, the runs
# on CPU are bit-identical and their mean says nothing about the spread. A --random_seed among
# the script's own arguments comes last and so wins, for every run. Each run checkpoints to
# checkpoints/run_<i>: runs of different seeds are different runs, and a --checkpoints folder
# holds the checkpoints of one run only (run_classifier.py refuses another's).
set -eu
# RUNS is checked before anything is created: a bad value would otherwise make the loop's test
# fail (not a number) or never run (0), and the script exit 0 having trained nothing.
case ${RUNS:-} in
    '' | *[!0-9]*) runs= ;;
    *) runs=${RUNS#"${RUNS%%[!0]*}"} ;;  # without leading zeros ("0" -> empty)
esac
if [ -z "$runs" ]; then
    echo "error: RUNS must be a positive integer, got ${RUNS:-(empty)}" >&2
    exit 2
fi
RUNS=$runs
. "$(dirname "$0")/../../../common.sh"
[ -f ./model_conf ] && . ./model_conf
require_env MODEL_PATH TASK_DATA_PATH
require_file "$TASK_DATA_PATH/$TASK/train.tsv" "$MODEL_PATH/ernie_config.json" "$MODEL_PATH/vocab.txt"
export CUDA_VISIBLE_DEVICES
mkdir -p log output
timestamp=$(date +%Y%m%d%H%M%S)
DEV_SETS=${DEV_SETS:-$TASK_DATA_PATH/$TASK/dev.tsv}
TEST_SETS=${TEST_SETS:-$TASK_DATA_PATH/$TASK/test.tsv}

run=1
while [ "$run" -le "$RUNS" ]; do
    tag="$run.$LR.$BATCH.$EPOCH.$timestamp"
    saves=${TEST_SAVES:-output/test_out.$tag.tsv}
    saves=$(echo "$saves" | sed "s/{run}/$run/g")
    log="log/job.$tag.log"
    extra=$(echo "${EXTRA_FLAGS:-}" | sed "s/{run}/$run/g")
    status_file=$(mktemp)
    {
        if launch run_classifier.py --for_cn false \
            --use_fast_executor "${e_executor:-true}" --tokenizer "${TOKENIZER:-FullTokenizer}" \
            --use_fp16 "${USE_FP16:-false}" --do_train true --do_val true --do_test true \
            --verbose true --init_pretraining_params "$MODEL_PATH/params" \
            --train_set "$TASK_DATA_PATH/$TASK/train.tsv" --dev_set "$DEV_SETS" \
            --test_set "$TEST_SETS" --test_save "$saves" \
            --vocab_path "$MODEL_PATH/vocab.txt" --ernie_config_path "$MODEL_PATH/ernie_config.json" \
            --checkpoints "./checkpoints/run_$run" --weight_decay 0.0 --warmup_proportion 0.1 \
            --num_iteration_per_drop_scope 1 --random_seed "$run" \
            --batch_size "$BATCH" --learning_rate "$LR" --epoch "$EPOCH" --max_seq_len "$MAX_LEN" \
            --save_steps "$SAVE_STEPS" --validation_steps "$VAL_STEPS" --skip_steps "$SKIP_STEPS" \
            --metric "$METRIC" --num_labels "$NUM_LABELS" $extra "$@" 2>&1
        then echo 0 > "$status_file"; else echo $? > "$status_file"; fi
    } | tee "$log"
    status=$(cat "$status_file"); rm -f "$status_file"
    status=${status:-1}  # the block exited before writing it
    [ "$status" -eq 0 ] || { echo "error: run $run failed (exit $status), see $log" >&2; exit "$status"; }
    run=$((run + 1))
done
