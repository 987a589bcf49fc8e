#!/bin/sh
# NLPCC-DBQA answer selection (qid, MRR), ERNIE 1.0 Base settings of 2019.
set -eu
. "$(dirname "$0")/../../common.sh"
require_env MODEL_PATH TASK_DATA_PATH
require_file "$TASK_DATA_PATH/nlpcc-dbqa/train.tsv" "$MODEL_PATH/ernie_config.json"
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0,1,2,3,4,5,6,7}

launch run_classifier.py \
    --verbose true --do_train true --do_val true --do_test false \
    --batch_size 8 --init_pretraining_params "$MODEL_PATH/params" \
    --train_set "$TASK_DATA_PATH/nlpcc-dbqa/train.tsv" \
    --dev_set "$TASK_DATA_PATH/nlpcc-dbqa/dev.tsv,$TASK_DATA_PATH/nlpcc-dbqa/test.tsv" \
    --vocab_path "$MODEL_PATH/vocab.txt" --ernie_config_path "$MODEL_PATH/ernie_config.json" \
    --checkpoints ./checkpoints --save_steps 1000 --weight_decay 0.01 \
    --warmup_proportion 0.0 --validation_steps 1000 --epoch 3 --max_seq_len 512 \
    --learning_rate 2e-5 --skip_steps 10 --random_seed 1 --num_labels 2 --metric acc_and_f1_and_mrr "$@"
