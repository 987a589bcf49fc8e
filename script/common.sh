# Sourced by every task script: checks what the user must provide, and launches an entry
# point on one process or, when several cards (or CPU processes) are asked for, under
# paddle.distributed.launch.
#
#   MODEL_PATH       folder of a released model: params/, vocab.txt, ernie_config.json; or a
#                    HuggingFace folder (config.json + model.safetensors or pytorch_model.bin,
#                    vocab.txt), converted once into <folder>_paddle2019 beside it (or under
#                    ERNIE_CONVERTED_DIR) and used from there (see use_hf_model_path)
#   TASK_DATA_PATH   folder of the task data (the 2019 task_data layout)
#   CUDA_VISIBLE_DEVICES  cards to use, as in 2019 (the scripts default to 2019's list, e.g.
#                    0,1,2,3,4,5,6,7). Only the cards present are used: when the list names more
#                    cards than Paddle sees, the first ones it sees are used and one line on
#                    stderr says so. One card -> plain python, several -> the launcher
#                    (--devices), no card -> CPU.
#   ERNIE_NODE_IPS   comma-separated machine IPs for a multi-machine run (same command on each)
#   ERNIE_CPU_PROCS  on CPU: number of processes (gloo), a positive integer, default 1
#   PYTHON           interpreter (default python3)
#
# --use_cuda true|false among the script's extra flags wins: false runs on CPU (one process, or
# ERNIE_CPU_PROCS) even where cards exist; true on a machine without cards runs the CPU layout
# and the entry point warns. Without it, --use_cuda is appended to match the machine.
#
# The cards are counted by one call, `$PYTHON -c "...device_count()..."` (prints an integer),
# run with CUDA_VISIBLE_DEVICES as set: CUDA enumerates the listed ids in order and stops at the
# first one that names no card, so that count is how many of the listed ids, from the first,
# exist (0,...,7 on a 2-card machine: 2, i.e. 0 and 1).

ERNIE_ROOT=$(cd "$(dirname "$0")" && while [ ! -f run_classifier.py ] && [ "$PWD" != / ]; do cd ..; done && pwd)
PYTHON=${PYTHON:-python3}

require_env() {
    for name in "$@"; do
        eval "value=\${$name:-}"
        if [ -z "$value" ]; then
            echo "error: set $name (see README: MODEL_PATH holds params/, vocab.txt and ernie_config.json; TASK_DATA_PATH the task folders)" >&2
            exit 2
        fi
        [ "$name" != MODEL_PATH ] || use_hf_model_path
    done
}

# A HuggingFace MODEL_PATH (config.json and weights, no params/ or ernie_config.json) is
# converted by tools.convert_params into the 2019 layout the scripts read, once: the conversion
# is kept and reused while it is newer than the HF config and weights (the folder appears
# whole, so one that exists is complete). MODEL_PATH then names the conversion.
use_hf_model_path() {
    _hf=${MODEL_PATH%/}
    [ -f "$_hf/config.json" ] && [ ! -e "$_hf/params" ] && [ ! -e "$_hf/ernie_config.json" ] \
        || return 0
    _weights=
    for _f in model.safetensors model.safetensors.index.json pytorch_model.bin \
            pytorch_model.bin.index.json; do
        if [ -f "$_hf/$_f" ]; then _weights=$_hf/$_f; break; fi
    done
    [ -n "$_weights" ] || return 0
    if [ ! -f "$_hf/vocab.txt" ]; then
        echo "error: MODEL_PATH $_hf is a HuggingFace folder without vocab.txt (the task scripts need a WordPiece vocabulary)" >&2
        exit 2
    fi
    _conv=${ERNIE_CONVERTED_DIR:-$(dirname "$_hf")}/$(basename "$_hf")_paddle2019
    if [ -d "$_conv/params" ] && [ -f "$_conv/vocab.txt" ] && [ -f "$_conv/ernie_config.json" ] \
            && [ ! "$_weights" -nt "$_conv/ernie_config.json" ] \
            && [ ! "$_hf/config.json" -nt "$_conv/ernie_config.json" ]; then
        echo "MODEL_PATH $_hf is a HuggingFace folder: using its conversion $_conv" >&2
    else
        echo "MODEL_PATH $_hf is a HuggingFace folder: converting it to $_conv" >&2
        PYTHONPATH="$ERNIE_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
            "$PYTHON" -m tools.convert_params "$_hf" "$_conv" --to paddle2019 >/dev/null \
            || exit $?
    fi
    MODEL_PATH=$_conv
}

require_file() {
    for path in "$@"; do
        if [ ! -e "$path" ]; then
            echo "error: $path not found" >&2
            exit 2
        fi
    done
}

# the number of CUDA cards Paddle can use with CUDA_VISIBLE_DEVICES as set (0 without CUDA)
count_cards() {
    cards=$("$PYTHON" -c "
import paddle
try:
    n = paddle.device.cuda.device_count() if paddle.device.is_compiled_with_cuda() else 0
except Exception:
    n = 0
print(n)" 2>/dev/null | tail -n 1) || cards=0
    case $cards in
        '' | *[!0-9]*) cards=0 ;;
    esac
}

# ERNIE_CPU_PROCS -> cpu_procs (default 1); anything but a positive integer stops the script
check_cpu_procs() {
    cpu_procs=${ERNIE_CPU_PROCS:-1}
    case $cpu_procs in
        *[!0-9]*) cpu_procs= ;;
    esac
    cpu_procs=${cpu_procs#"${cpu_procs%%[!0]*}"}  # without leading zeros ("0" -> empty)
    [ "${#cpu_procs}" -le 4 ] || cpu_procs=   # more than 9999: beyond any machine (and sh's numbers)
    if [ -z "$cpu_procs" ]; then
        echo "error: ERNIE_CPU_PROCS must be a positive integer (the number of CPU processes), got '${ERNIE_CPU_PROCS:-}'" >&2
        exit 2
    fi
}
check_cpu_procs  # at once: before anything runs, and outside any pipeline a script puts launch in

# the last --use_cuda VALUE / --use_cuda=VALUE among the arguments (argparse keeps the last):
# true, false, other (left for the entry point to refuse), or empty when there is none
user_use_cuda() {
    _value= _take= _seen=
    for _arg in "$@"; do
        if [ -n "$_take" ]; then
            _value=$_arg _take=
            continue
        fi
        case $_arg in
            --use_cuda) _take=1 _seen=1 ;;
            --use_cuda=*) _value=${_arg#--use_cuda=} _seen=1 ;;
        esac
    done
    [ -n "$_seen" ] || return 0
    case $(printf '%s' "$_value" | tr '[:upper:]' '[:lower:]') in
        true | t | 1 | yes | y) echo true ;;
        false | f | 0 | no | n) echo false ;;
        *) echo other ;;
    esac
}

# launch ENTRY.py ARGS...: runs on the listed cards that exist (CUDA_VISIBLE_DEVICES), else on
# CPU (ERNIE_CPU_PROCS processes); a --use_cuda in ARGS wins, otherwise one is appended
launch() {
    entry=$1
    shift
    check_cpu_procs
    wanted=$(user_use_cuda "$@")
    if [ "$wanted" = false ]; then
        cards=0
    else
        count_cards
    fi
    devices=
    if [ "$cards" -gt 0 ]; then
        if [ -n "${CUDA_VISIBLE_DEVICES+set}" ]; then
            listed=$(printf '%s\n' "$CUDA_VISIBLE_DEVICES" | tr -d ' ' | tr ',' '\n' | grep .) || listed=
        else
            listed=$(i=0; while [ "$i" -lt "$cards" ]; do echo "$i"; i=$((i + 1)); done)
        fi
        devices=$(printf '%s\n' "$listed" | grep . | head -n "$cards" | paste -s -d , -) || devices=
    fi
    if [ -n "$devices" ]; then
        use_cuda=true
        nlisted=$(printf '%s\n' "$listed" | grep -c .)
        nproc=$(printf '%s\n' "$devices" | tr ',' '\n' | grep -c .)
        if [ "$nlisted" -gt "$nproc" ]; then
            if [ "$nproc" -eq 1 ]; then present="1 is"; else present="$nproc are"; fi
            echo "CUDA_VISIBLE_DEVICES lists $nlisted cards, $present present: using $devices" >&2
        fi
    else
        use_cuda=false
        nproc=$cpu_procs
    fi
    [ -n "$wanted" ] || set -- "$@" --use_cuda "$use_cuda"
    # the launcher imports Paddle, which warns that no ccache (a compiler cache) is installed;
    # the entry points hide that warning themselves, the launcher is told to here
    launcher_warnings="ignore:No ccache found${PYTHONWARNINGS:+,$PYTHONWARNINGS}"
    if [ "$nproc" -le 1 ] && [ -z "${ERNIE_NODE_IPS:-}" ]; then
        if [ "$use_cuda" = true ]; then
            CUDA_VISIBLE_DEVICES=$devices "$PYTHON" -u "$ERNIE_ROOT/$entry" "$@"
        else
            "$PYTHON" -u "$ERNIE_ROOT/$entry" "$@"
        fi
    elif [ "$use_cuda" = true ]; then
        CUDA_VISIBLE_DEVICES=$devices PYTHONWARNINGS=$launcher_warnings \
            "$PYTHON" -m paddle.distributed.launch --devices "$devices" \
            ${ERNIE_NODE_IPS:+--ips "$ERNIE_NODE_IPS"} --log_dir "${ERNIE_LOG_DIR:-log}" --log_level WARNING \
            "$ERNIE_ROOT/$entry" "$@"
    else
        # CPU processes: gloo, and the cards hidden (one invalid id a process, so CUDA sees none
        # and the launcher, which counts CUDA_VISIBLE_DEVICES, gives every process a slot)
        hidden=-1
        i=1
        while [ "$i" -lt "$nproc" ]; do
            hidden="$hidden,-1"
            i=$((i + 1))
        done
        CUDA_VISIBLE_DEVICES=$hidden PADDLE_DISTRI_BACKEND=gloo PYTHONWARNINGS=$launcher_warnings \
            "$PYTHON" -m paddle.distributed.launch --nproc_per_node "$nproc" \
            ${ERNIE_NODE_IPS:+--ips "$ERNIE_NODE_IPS"} --log_dir "${ERNIE_LOG_DIR:-log}" --log_level WARNING \
            "$ERNIE_ROOT/$entry" "$@"
    fi
}
