#!/bin/sh
# GLUE STS-B with ERNIE 2.0 Large (English), the 2019 settings: 0,1,2,3,4,5,6,7 card(s) x batch 16.
# Needs MODEL_PATH (params/, vocab.txt, ernie_config.json) and TASK_DATA_PATH (cvt.sh output).
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0,1,2,3,4,5,6,7}
TASK=STS-B BATCH=16 LR=5e-5 EPOCH=3 MAX_LEN=128
SAVE_STEPS=1000 VAL_STEPS=100000000000 SKIP_STEPS=10 METRIC=pearson_and_spearman NUM_LABELS=1 RUNS=${RUNS:-5}
EXTRA_FLAGS="--is_classify false --is_regression true"
. "$(dirname "$0")/../../glue_task.sh"
