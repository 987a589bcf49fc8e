#!/bin/sh
# GLUE CoLA with ERNIE 2.0 Base (English), the 2019 settings: 0 card(s) x batch 64.
# Needs MODEL_PATH (params/, vocab.txt, ernie_config.json) and TASK_DATA_PATH (cvt.sh output).
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
TASK=CoLA BATCH=64 LR=3e-5 EPOCH=3 MAX_LEN=128
SAVE_STEPS=1000 VAL_STEPS=1000000000 SKIP_STEPS=10 METRIC=matthews_corrcoef NUM_LABELS=2 RUNS=${RUNS:-5}
. "$(dirname "$0")/../../glue_task.sh"
