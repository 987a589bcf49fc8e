#!/bin/sh
# GLUE MNLI with ERNIE 2.0 Large (English), the 2019 settings: 0,1,2,3,4,5,6,7 card(s) x batch 32.
# Needs MODEL_PATH (params/, vocab.txt, ernie_config.json) and TASK_DATA_PATH (cvt.sh output).
CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0,1,2,3,4,5,6,7}
TASK=MNLI BATCH=32 LR=3e-5 EPOCH=3 MAX_LEN=128
SAVE_STEPS=25000 VAL_STEPS=1000000000000 SKIP_STEPS=500 METRIC=simple_accuracy NUM_LABELS=3 RUNS=${RUNS:-5}
DEV_SETS="$TASK_DATA_PATH/MNLI/m/dev.tsv,$TASK_DATA_PATH/MNLI/mm/dev.tsv"
TEST_SETS="$TASK_DATA_PATH/MNLI/m/test.tsv,$TASK_DATA_PATH/MNLI/mm/test.tsv"
TEST_SAVES="output/test_out.{run}.m.tsv,output/test_out.{run}.mm.tsv"
EXTRA_FLAGS="--diagnostic $TASK_DATA_PATH/MNLI/diagnostic.tsv --diagnostic_save output/test_out.{run}.m.diagnostic.tsv"
. "$(dirname "$0")/../../glue_task.sh"
