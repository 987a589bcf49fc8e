#!/bin/sh
# GLUE WNLI with ERNIE 2.0 Base (English), the 2019 settings: 0 card(s) x batch 8.
# Needs MODEL_PATH (params/, vocab.txt, ernie_config.json) and TASK_DATA_PATH (cvt.sh output).
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
TASK=WNLI BATCH=8 LR=2e-5 EPOCH=4 MAX_LEN=512
SAVE_STEPS=1000 VAL_STEPS=1000000 SKIP_STEPS=10 METRIC=simple_accuracy NUM_LABELS=2 RUNS=${RUNS:-5}
. "$(dirname "$0")/../../glue_task.sh"
