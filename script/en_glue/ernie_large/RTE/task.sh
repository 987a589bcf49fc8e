#!/bin/sh
# GLUE RTE with ERNIE 2.0 Large (English), the 2019 settings: 0 card(s) x batch 16.
# Needs MODEL_PATH (params/, vocab.txt, ernie_config.json) and TASK_DATA_PATH (cvt.sh output).
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
TASK=RTE BATCH=16 LR=3e-5 EPOCH=5 MAX_LEN=128
SAVE_STEPS=1000 VAL_STEPS=2000000000000 SKIP_STEPS=10 METRIC=simple_accuracy NUM_LABELS=2 RUNS=${RUNS:-5}
. "$(dirname "$0")/../../glue_task.sh"
