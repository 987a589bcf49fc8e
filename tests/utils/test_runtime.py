"""utils.runtime.die_with_parent: a trainer dies with the process that started it (Linux)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from ernie_testkit import REPO

# the parent starts a child that asks to die with it, prints the child's pid, then sleeps
PARENT = r"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", '''
import sys, time
sys.path.insert(0, sys.argv[1])
from utils.runtime import die_with_parent
die_with_parent()
print("ready", flush=True)
time.sleep(120)
''', sys.argv[1]], stdout=subprocess.PIPE, text=True, start_new_session=True)
assert child.stdout.readline().strip() == "ready"
print(child.pid, flush=True)
time.sleep(120)
"""


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_trainer_in_its_own_session_dies_when_its_launcher_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(REPO)], stdout=subprocess.PIPE,
                              text=True)
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        os.kill(parent.pid, signal.SIGKILL)   # its own session: not in the killed group
        parent.wait(10)
        deadline = time.time() + 20
        while alive(child) and time.time() < deadline:
            time.sleep(0.1)
        assert not alive(child)
    finally:
        parent.kill()
        if "child" in locals() and alive(child):
            os.kill(child, signal.SIGKILL)
