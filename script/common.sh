# Sourced by every task script: checks what the user must provide, and launches an entry
# point on one process or, when several cards (or CPU processes) are asked for, under
# paddle.distributed.launch.
#
#   MODEL_PATH       folder of a released model: params/, vocab.txt, ernie_config.json
#   TASK_DATA_PATH   folder of the task data (the 2019 task_data layout)
#   CUDA_VISIBLE_DEVICES  cards to use: one card -> plain python, several -> the launcher
#   ERNIE_NODE_IPS   comma-separated machine IPs for a multi-machine run (same command on each)
#   ERNIE_CPU_PROCS  on a CPU-only Paddle: number of processes (gloo), default 1
#   PYTHON           interpreter (default python3)

ERNIE_ROOT=$(cd "$(dirname "$0")" && while [ ! -f run_classifier.py ] && [ "$PWD" != / ]; do cd ..; done && pwd)
PYTHON=${PYTHON:-python3}

require_env() {
    for name in "$@"; do
        eval "value=\${$name:-}"
        if [ -z "$value" ]; then
            echo "error: set $name (see README: MODEL_PATH holds params/, vocab.txt and ernie_config.json; TASK_DATA_PATH the task folders)" >&2
            exit 2
        fi
    done
}

require_file() {
    for path in "$@"; do
        if [ ! -e "$path" ]; then
            echo "error: $path not found" >&2
            exit 2
        fi
    done
}

has_cuda() {
    "$PYTHON" -c "import paddle, sys; sys.exit(0 if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else 1)" 2>/dev/null
}

# launch ENTRY.py ARGS...: decides the processes, adds --use_cuda to match the machine
launch() {
    entry=$1
    shift
    if has_cuda; then
        use_cuda=true
        devices=${CUDA_VISIBLE_DEVICES:-0}
        nproc=$(echo "$devices" | tr ',' '\n' | grep -c .)
    else
        use_cuda=false
        nproc=${ERNIE_CPU_PROCS:-1}
    fi
    if [ "$nproc" -le 1 ] && [ -z "${ERNIE_NODE_IPS:-}" ]; then
        "$PYTHON" -u "$ERNIE_ROOT/$entry" "$@" --use_cuda "$use_cuda"
    elif [ "$use_cuda" = true ]; then
        "$PYTHON" -m paddle.distributed.launch --devices "$devices" \
            ${ERNIE_NODE_IPS:+--ips "$ERNIE_NODE_IPS"} --log_dir "${ERNIE_LOG_DIR:-log}" \
            "$ERNIE_ROOT/$entry" "$@" --use_cuda true
    else
        "$PYTHON" -m paddle.distributed.launch --nproc_per_node "$nproc" \
            ${ERNIE_NODE_IPS:+--ips "$ERNIE_NODE_IPS"} --log_dir "${ERNIE_LOG_DIR:-log}" \
            "$ERNIE_ROOT/$entry" "$@" --use_cuda false
    fi
}
