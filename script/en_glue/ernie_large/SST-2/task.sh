#!/bin/sh
# GLUE SST-2 with ERNIE 2.0 Large (English), the 2019 settings: 0,1,2,3,4,5,6,7 card(s) x batch 8.
# Needs MODEL_PATH (params/, vocab.txt, ernie_config.json) and TASK_DATA_PATH (cvt.sh output).
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0,1,2,3,4,5,6,7}
TASK=SST-2 BATCH=8 LR=2e-5 EPOCH=4 MAX_LEN=128
SAVE_STEPS=10000 VAL_STEPS=100000000000 SKIP_STEPS=500 METRIC=simple_accuracy NUM_LABELS=2 RUNS=${RUNS:-5}
. "$(dirname "$0")/../../glue_task.sh"
