#!/bin/sh
# ERNIE 1.0 pretraining (masked LM with knowledge masking + next sentence) with the 2019
# settings of script/zh_task/pretrain.sh: 8 cards, 8192 tokens a card, lr 1e-4, max_seq_len 512,
# validation every 100 steps, checkpoints every 10000, 1M steps (warmup 5000, linear decay).
#
#   TRAIN_FILELIST     file list of the training data (default ./data/train_filelist)
#   VALID_FILELIST     file list of the validation data (default ./data/valid_filelist;
#                      set it empty to skip validation)
#   VOCAB_PATH         vocabulary (default ./config/vocab.txt)
#   ERNIE_CONFIG_PATH  model config (default ./config/ernie_config.json)
#   CHECKPOINTS        where step_N checkpoints go (default ./checkpoints)
#   CUDA_VISIBLE_DEVICES  cards (default 0,...,7 as in 2019; those present are used, no card
#                      -> CPU, ERNIE_CPU_PROCS processes: see script/common.sh)
# Build data and a vocabulary with `python -m tools.pretrain_data people_daily|text ...`.
# Extra flags are passed on to train.py and win over the ones below, e.g.
#   sh script/zh_task/pretrain.sh --num_train_steps 1000 --multitask_config FILE
set -eu
. "$(dirname "$0")/../common.sh"

TRAIN_FILELIST=${TRAIN_FILELIST:-./data/train_filelist}
VALID_FILELIST=${VALID_FILELIST-./data/valid_filelist}
VOCAB_PATH=${VOCAB_PATH:-./config/vocab.txt}
ERNIE_CONFIG_PATH=${ERNIE_CONFIG_PATH:-./config/ernie_config.json}
CHECKPOINTS=${CHECKPOINTS:-./checkpoints}
for pair in "TRAIN_FILELIST:$TRAIN_FILELIST" "VOCAB_PATH:$VOCAB_PATH" \
        "ERNIE_CONFIG_PATH:$ERNIE_CONFIG_PATH" "VALID_FILELIST:$VALID_FILELIST"; do
    name=${pair%%:*}
    path=${pair#*:}
    if [ -n "$path" ] && [ ! -e "$path" ]; then
        echo "error: $path not found (set $name; python -m tools.pretrain_data builds data and a vocabulary)" >&2
        exit 2
    fi
done

export FLAGS_eager_delete_tensor_gb=0
export FLAGS_sync_nccl_allreduce=1
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0,1,2,3,4,5,6,7}

launch train.py \
    --is_distributed false --use_fast_executor true --weight_sharing true \
    --in_tokens true --batch_size 8192 \
    --vocab_path "$VOCAB_PATH" \
    --train_filelist "$TRAIN_FILELIST" --valid_filelist "$VALID_FILELIST" \
    --validation_steps 100 --num_train_steps 1000000 \
    --checkpoints "$CHECKPOINTS" --save_steps 10000 \
    --ernie_config_path "$ERNIE_CONFIG_PATH" \
    --learning_rate 1e-4 --weight_decay 0.01 --max_seq_len 512 --skip_steps 10 "$@"
