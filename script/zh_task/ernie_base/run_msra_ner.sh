#!/bin/sh
# MSRA-NER named entities (PER/ORG/LOC, IOB: 7 labels), ERNIE 1.0 Base settings of 2019.
set -eu
. "$(dirname "$0")/../../common.sh"
require_env MODEL_PATH TASK_DATA_PATH
require_file "$TASK_DATA_PATH/msra_ner/train.tsv" "$TASK_DATA_PATH/msra_ner/label_map.json" \
    "$MODEL_PATH/ernie_config.json"
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}

launch run_sequence_labeling.py \
    --do_train true --do_val true --do_test true \
    --batch_size 16 --init_pretraining_params "$MODEL_PATH/params" \
    --num_labels 7 --chunk_scheme "IOB" \
    --label_map_config "$TASK_DATA_PATH/msra_ner/label_map.json" \
    --train_set "$TASK_DATA_PATH/msra_ner/train.tsv" \
    --dev_set "$TASK_DATA_PATH/msra_ner/dev.tsv" \
    --test_set "$TASK_DATA_PATH/msra_ner/test.tsv" \
    --vocab_path "$MODEL_PATH/vocab.txt" --ernie_config_path "$MODEL_PATH/ernie_config.json" \
    --checkpoints ./checkpoints --save_steps 100000 --weight_decay 0.01 \
    --warmup_proportion 0.0 --validation_steps 100 --epoch 6 --max_seq_len 256 \
    --learning_rate 5e-5 --skip_steps 10 --random_seed 1 "$@"
