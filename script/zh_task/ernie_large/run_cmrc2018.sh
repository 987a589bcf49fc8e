#!/bin/sh
# CMRC 2018 span-extraction reading comprehension, ERNIE Large settings of 2019 (8 cards x 8).
set -eu
. "$(dirname "$0")/../../common.sh"
require_env MODEL_PATH TASK_DATA_PATH
require_file "$TASK_DATA_PATH/cmrc2018/train.json" "$TASK_DATA_PATH/cmrc2018/dev.json" "$MODEL_PATH/ernie_config.json"
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0,1,2,3,4,5,6,7}

launch run_mrc.py \
    --verbose true --do_train true --do_val true --do_test false \
    --batch_size 8 --in_tokens false --init_pretraining_params "$MODEL_PATH/params" \
    --train_set "$TASK_DATA_PATH/cmrc2018/train.json" \
    --dev_set "$TASK_DATA_PATH/cmrc2018/dev.json" \
    --vocab_path "$MODEL_PATH/vocab.txt" --ernie_config_path "$MODEL_PATH/ernie_config.json" \
    --checkpoints ./checkpoints --save_steps 1000 --weight_decay 0.01 \
    --warmup_proportion 0.0 --validation_steps 100 --epoch 2 --max_seq_len 512 \
    --doc_stride 128 --do_lower_case true --learning_rate 3e-5 --skip_steps 10 "$@"
