"""Process settings for Paddle and its math library, applied by `apply()`.

Every entry point (and the test suite's conftest) calls `apply()` first, before Paddle is
imported: the variables below are read once, when Paddle and MKL load. Importing a toolkit
module changes nothing in the process; a library user who wants the same speed calls it too.
"""
import os
import warnings

# Paddle overwrites OMP_NUM_THREADS with 1 when it loads; `apply()` records what the user asked
# for (utils.runtime.set_cpu_threads reads it).
USER_OMP_NUM_THREADS = None
_applied = False


def _keep_freed_memory():
    """Stop glibc from handing large freed blocks back to the kernel.

    Paddle's CPU allocator returns every tensor's memory to malloc when it dies, and glibc
    serves blocks above its mmap threshold with fresh mmaps, so each new activation paid for
    page faults on first touch: elementwise ops ran an order of magnitude slower than memory
    bandwidth allows. Serving everything from the heap and
    trimming it only above 1 GB of free space keeps those pages mapped for reuse.
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    m_trim_threshold, m_mmap_max = -1, -4
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 1 << 30)


def _amd_mkl_cpu_type():
    """The MKL code path for an AMD CPU: "7" (AVX-512) when it has the Skylake-X AVX-512
    subset, "5" (AVX2) otherwise; None on other vendors, which MKL recognises itself."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read(16384)
    except OSError:
        return None
    if "AuthenticAMD" not in info:
        return None
    flags = next((line.split() for line in info.splitlines() if line.startswith("flags")), [])
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= set(flags):
        return "7"
    return "5"


def apply():
    """Set Paddle's and MKL's environment for this process (idempotent); call it before the
    first `import paddle`, which reads these variables once."""
    global USER_OMP_NUM_THREADS, _applied
    if _applied:
        return
    _applied = True
    USER_OMP_NUM_THREADS = os.environ.get("OMP_NUM_THREADS")
    # Paddle's C++ core logs every executor start at INFO level; users of the 2019 toolkit
    # read its own log lines, so keep only warnings and errors unless asked otherwise.
    os.environ.setdefault("GLOG_minloglevel", "2")
    # Transposes and reshapes as real copies: with Paddle 3's strided views, every consumer
    # (matmul, and reshape in the backward pass) gathered the strided data element by element
    # (see also utils.runtime.set_cpu_threads and model.transformer_encoder).
    os.environ.setdefault("FLAGS_use_stride_kernel", "0")
    _keep_freed_memory()
    # Paddle's CPU wheel does its matmuls with a bundled MKL that picks a slow generic code
    # path on AMD CPUs; this makes it take the AVX-512 or AVX2 one (the README's benchmark
    # table shows the effect). It must be set before Paddle loads MKL.
    mkl_cpu_type = _amd_mkl_cpu_type()
    if mkl_cpu_type:
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", mkl_cpu_type)
    # Paddle warns about a missing compiler cache on import; it concerns building C++
    # extensions, which this toolkit never does.
    warnings.filterwarnings("ignore", message="No ccache found")
    # Raised while Paddle traces a graph (to_static) by its own dropout code; not actionable.
    warnings.filterwarnings("ignore", message="Tensor do not have 'place' interface")
