#!/bin/sh
# usage: sh script/en_glue/preprocess/cvt.sh GLUE_DIR  -> ./glue_data_processed/
set -eu
if [ $# -lt 1 ]; then
    echo "usage: sh $0 GLUE_DIR (the raw GLUE download); writes ./glue_data_processed" >&2
    exit 2
fi
exec "${PYTHON:-python3}" "$(dirname "$0")/cvt.py" "$1" glue_data_processed
