"""Where and how a run executes: trainers and devices, CPU threads, seeds, static graphs."""
import os
import sys

import numpy as np
import paddle

from utils import paddle_env
from utils.args import MAX_SEED
from utils.errors import UsageError

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent():
    """Have the kernel kill this process when its parent exits (Linux). paddle.distributed.launch
    starts every trainer in a session of its own, so a kill of the launcher's process group (a
    `kill -9 -- -PGID`, a job scheduler stopping the job) would otherwise leave the trainers
    training and writing checkpoints with nobody to stop them. SIGKILL, because a trainer may be
    waiting in a collective that its dead peers never finish; checkpoints are written
    atomically and the run's lock ends with the process."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent:  # the parent exited before the kernel was asked
        os._exit(1)


class Runtime(object):
    """Where this process runs: trainer id, number of trainers, and whether it logs/saves."""

    def __init__(self, use_cuda=False):
        if use_cuda and not paddle.device.is_compiled_with_cuda():
            print("WARNING: --use_cuda true, but this PaddlePaddle has no CUDA; running on CPU.")
            use_cuda = False
        self.num_trainers = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
        self.trainer_id = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
        if use_cuda:
            paddle.set_device("gpu:%s" % os.environ.get("FLAGS_selected_gpus", "0").split(",")[0])
        else:
            paddle.set_device("cpu")
            set_cpu_threads()
        if self.num_trainers > 1:
            die_with_parent()
            paddle.distributed.init_parallel_env()
        self.is_main = self.trainer_id == 0
        self.scalars = None
        self.train_log = []  # the means of every train log line, for --enable_ce

    def open_visualdl(self, logdir):
        """--use_visualdl true: loss and metrics also go to a VisualDL log (trainer 0 only)."""
        if self.is_main:
            from visualdl import LogWriter
            self.scalars = LogWriter(logdir=logdir)
            print("VisualDL log: %s (view with: visualdl --logdir %s)" % (logdir, logdir))

    def add_scalars(self, prefix, values, step):
        if self.scalars is not None:
            for key, value in values.items():
                self.scalars.add_scalar("%s/%s" % (prefix, key), float(value), step)

    def wrap(self, model):
        """DataParallel over all trainers (NCCL on GPUs, gloo on CPUs) when there are several."""
        return paddle.DataParallel(model) if self.num_trainers > 1 else model


def set_cpu_threads(num_threads=None):
    """Let eager and to_static CPU kernels (matmuls above all) use this process' share of cores.

    Paddle's dygraph runs its CPU math library on one thread unless told otherwise, which
    halved training speed on 2 cores. Default: OMP_NUM_THREADS if set, else the cores this
    process may use divided among the trainers the launcher started on this machine.
    """
    if num_threads is None:
        if (paddle_env.USER_OMP_NUM_THREADS or "").isdigit():
            num_threads = int(paddle_env.USER_OMP_NUM_THREADS)
        else:
            local_trainers = int(os.environ.get("PADDLE_LOCAL_SIZE", "1") or 1)
            num_threads = len(os.sched_getaffinity(0)) // max(local_trainers, 1)
    paddle.base.core.set_num_threads(max(int(num_threads), 1))
    # static programs run their ops one after another on CPU: the executor's parallel op
    # scheduling oversubscribed the cores each matmul already uses (slower than eager)
    paddle.set_flags({"FLAGS_new_executor_serial_run": True})


def set_seed(seed):
    """Seed Paddle and numpy with --random_seed (None: leave them as they are)."""
    if seed is not None:
        if not 0 <= seed <= MAX_SEED:
            raise UsageError("--random_seed must be an integer in 0..%d, got %s"
                             % (MAX_SEED, seed))
        paddle.seed(seed)
        np.random.seed(seed)


def compile_model(model, use_static, input_spec):
    """The model's forward as a static graph (paddle.jit.to_static) over `input_spec`
    (model.ernie.encoder_input_spec for the encoder's inputs), or eager for debugging."""
    if not use_static:
        return model
    return paddle.jit.to_static(model, input_spec=input_spec, full_graph=True)
