#!/bin/sh
# ERNIE 2.0's claim at small scale: continual multi-task pretraining against knowledge masking
# alone, multi-task learning (every task from the first step) and continual learning (one task
# group after another, earlier ones dropped), all at the same number of steps of 4,096 tokens,
# each fine-tuned with the same settings and seeds on sentiment, NER and People's Daily QA.
# The arms and their stages: benchmarks/ernie2_arms.py. Data, vocabulary, model config and
# fine-tuning settings are those of benchmarks/knowledge_masking.sh (benchmarks/small_ernie.sh),
# with task ids (use_task_id, task_type_vocab_size 8) in every arm's config.
# Prints a table (also in $OUT/summary.md).
#
#   OUT=...            where everything goes (default ernie2_continual_output/)
#   PRE_STEPS=16000    pretraining steps of every arm (the stages scale with it)
#   SAVE_STEPS=1000    checkpoint interval: a killed run carries on from its last checkpoint
#                      when the command runs again (--resume auto)
#   ARMS="knowledge_masking continual_multitask multitask continual"  the arms to run
#   SEEDS="1 2 3"      fine-tuning seeds for sentiment and NER
#   MRC_SEEDS="1"      fine-tuning seeds for People's Daily QA
#   SENT_EPOCH=3       sentiment fine-tuning epochs (NER 1 epoch, QA 2)
#   PHASE=all          `pretrain` stops after pretraining (and the perplexities), `table` only
#                      prints the table of what has finished
# Finished pretraining runs and fine-tunings are reused when the command runs again. Two arms
# can run at once on two cores: ARMS=... OMP_NUM_THREADS=1 in two shells (after one of them
# has built the data).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-ernie2_continual_output}
PRE_STEPS=${PRE_STEPS:-16000}
SAVE_STEPS=${SAVE_STEPS:-1000}
ARMS=${ARMS:-knowledge_masking continual_multitask multitask continual}
SEEDS=${SEEDS:-1 2 3}
MRC_SEEDS=${MRC_SEEDS:-1}
SENT_EPOCH=${SENT_EPOCH:-3}
PHASE=${PHASE:-all}
PYTHON=${PYTHON:-python3}
export PYTHON
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
. benchmarks/small_ernie.sh

table() {
    # shellcheck disable=SC2086
    "$PYTHON" -m benchmarks.ernie2_arms table --out "$OUT" --steps "$PRE_STEPS" \
        --seeds $SEEDS --mrc_seeds $MRC_SEEDS
}
if [ "$PHASE" = table ]; then
    table
    exit 0
fi

prepare_data
CONFIGS=$OUT/configs/steps_$PRE_STEPS
"$PYTHON" -m benchmarks.ernie2_arms configs --steps "$PRE_STEPS" \
    --data_dir "$OUT/people_daily" --output_dir "$CONFIGS"

pretrain() {  # pretrain ARM: $OUT/ARM/steps_N, params/ and valid_ppl.log once finished
    name=$1/steps_$PRE_STEPS
    dir=$OUT/$name
    if [ ! -d "$dir/params" ]; then
        model_dir "$name" '
 "use_task_id": true, "task_type_vocab_size": 8,'
        echo "== pretraining $name"
        TRAIN_FILELIST="$OUT/people_daily/train_filelist" VALID_FILELIST="" \
        VOCAB_PATH="$dir/vocab.txt" ERNIE_CONFIG_PATH="$dir/pretrain_config.json" \
        CHECKPOINTS="$dir/checkpoints" \
        sh script/zh_task/pretrain.sh --multitask_config "$CONFIGS/$1.json" \
            --batch_size 4096 --max_seq_len 128 --warmup_steps $((PRE_STEPS / 10)) \
            --learning_rate 1e-3 --save_steps "$SAVE_STEPS" --keep_checkpoint_max 2 \
            --skip_steps 100 --random_seed 1 --resume auto --export_model_dir "$dir.export" \
            >> "$dir/pretrain.log" 2>&1 || { tail -n 5 "$dir/pretrain.log"; exit 1; }
        mv "$dir.export/params" "$dir/params"
        rm -rf "$dir.export"
    fi
    # every arm's masked LM on the same validation text with the same masking (seed 1)
    [ -f "$dir/valid_ppl.log.done" ] && return 0
    "$PYTHON" train.py --use_cuda false --do_test true \
        --test_filelist "$OUT/people_daily/valid_filelist" \
        --init_checkpoint "$dir/checkpoints/step_$PRE_STEPS" --vocab_path "$dir/vocab.txt" \
        --ernie_config_path "$dir/pretrain_config.json" --batch_size 4096 --in_tokens true \
        --max_seq_len 128 --weight_sharing true --random_seed 1 > "$dir/valid_ppl.log" 2>&1 \
        || { tail -n 5 "$dir/valid_ppl.log"; exit 1; }
    touch "$dir/valid_ppl.log.done"
}

for arm in $ARMS; do
    pretrain "$arm"
done
if [ "$PHASE" = all ]; then
    for arm in $ARMS; do
        model=$arm/steps_$PRE_STEPS
        for seed in $SEEDS; do
            echo "== fine-tuning $model on ner and sentiment, seed $seed"
            finetune "$model" ner "$seed"
            finetune "$model" sentiment "$seed"
        done
        for seed in $MRC_SEEDS; do
            echo "== fine-tuning $model on People's Daily QA, seed $seed"
            finetune "$model" mrc "$seed"
        done
    done
fi
table
