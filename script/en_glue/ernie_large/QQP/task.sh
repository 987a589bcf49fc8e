#!/bin/sh
# GLUE QQP with ERNIE 2.0 Large (English), the 2019 settings: 0,1,2,3,4,5,6,7 card(s) x batch 32.
# Needs MODEL_PATH (params/, vocab.txt, ernie_config.json) and TASK_DATA_PATH (cvt.sh output).
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0,1,2,3,4,5,6,7}
TASK=QQP BATCH=32 LR=5e-5 EPOCH=3 MAX_LEN=128
SAVE_STEPS=30000 VAL_STEPS=1000000000000 SKIP_STEPS=500 METRIC=acc_and_f1 NUM_LABELS=2 RUNS=${RUNS:-5}
. "$(dirname "$0")/../../glue_task.sh"
