import os
import warnings

# Paddle's C++ core logs every executor start at INFO level; users of the 2019 toolkit read
# its own log lines, so keep only warnings and errors unless asked otherwise.
os.environ.setdefault("GLOG_minloglevel", "2")


def _is_amd_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            return "AuthenticAMD" in f.read(4096)
    except OSError:
        return False


# Paddle's CPU wheel does its matmuls with a bundled MKL that picks a slow code path on AMD
# CPUs; this makes it take its AVX2 path (measured 2.6x faster sgemm, DESIGN.md section 7).
# It must be set before Paddle loads MKL, which is why it lives here.
if _is_amd_cpu():
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
# Paddle warns about a missing compiler cache on import; it concerns building C++ extensions,
# which this toolkit never does.
warnings.filterwarnings("ignore", message="No ccache found")
# Raised while Paddle traces a graph (to_static) by its own dropout code; not actionable.
warnings.filterwarnings("ignore", message="Tensor do not have 'place' interface")
