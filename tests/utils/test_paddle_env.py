"""Importing the toolkit changes nothing in the process; utils.paddle_env.apply() does, once.

Each case runs in a fresh interpreter (the test process has applied the settings already),
with the variables apply() sets removed from its environment, and records every glibc that
ctypes loads (mallopt is only reachable through one)."""
import json
import os
import subprocess
import sys

from ernie_testkit import REPO

SET_BY_APPLY = ("GLOG_minloglevel", "FLAGS_use_stride_kernel", "MKL_DEBUG_CPU_TYPE")

PROBE = r"""
import ctypes, json, os, sys
libc_loads = []
real_cdll = ctypes.CDLL
def spy(name, *args, **kwargs):
    if "libc.so" in str(name):
        libc_loads.append(str(name))
    return real_cdll(name, *args, **kwargs)
ctypes.CDLL = spy
before = dict(os.environ)
for module in sys.argv[1].split(","):
    __import__(module)
after_import = dict(os.environ)
libc_after_import = list(libc_loads)
from utils import paddle_env
paddle_env.apply()
paddle_env.apply()
print(json.dumps({
    "changed_by_import": sorted(k for k in set(before) | set(after_import)
                                if before.get(k) != after_import.get(k)),
    "libc_by_import": libc_after_import,
    "changed_by_apply": sorted(k for k in set(after_import) | set(os.environ)
                               if after_import.get(k) != os.environ.get(k)),
    "libc_by_apply": libc_loads[len(libc_after_import):],
}))
"""


def probe(modules):
    env = {k: v for k, v in os.environ.items() if k not in SET_BY_APPLY}
    out = subprocess.run([sys.executable, "-c", PROBE, ",".join(modules)], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_importing_the_tokenizer_and_checkpoints_changes_nothing():
    seen = probe(["tokenization", "utils.checkpoint", "utils.fileio", "utils.args"])
    assert seen["changed_by_import"] == []
    assert seen["libc_by_import"] == []


def test_apply_sets_paddles_environment_once():
    seen = probe(["tokenization"])
    assert {"GLOG_minloglevel", "FLAGS_use_stride_kernel"} <= set(seen["changed_by_apply"])
    assert set(seen["changed_by_apply"]) <= set(SET_BY_APPLY)
    assert len(seen["libc_by_apply"]) == 1    # mallopt, called by the first apply() only


def test_a_users_setting_wins():
    env = dict(os.environ, FLAGS_use_stride_kernel="1")
    out = subprocess.run(
        [sys.executable, "-c", "import os; from utils import paddle_env; paddle_env.apply(); "
                               "print(os.environ['FLAGS_use_stride_kernel'])"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
