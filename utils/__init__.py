import os
import warnings

# Paddle's C++ core logs every executor start at INFO level; users of the 2019 toolkit read
# its own log lines, so keep only warnings and errors unless asked otherwise.
os.environ.setdefault("GLOG_minloglevel", "2")
# Paddle warns about a missing compiler cache on import; it concerns building C++ extensions,
# which this toolkit never does.
warnings.filterwarnings("ignore", message="No ccache found")
# Raised while Paddle traces a graph (to_static) by its own dropout code; not actionable.
warnings.filterwarnings("ignore", message="Tensor do not have 'place' interface")
