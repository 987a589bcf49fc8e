"""benchmarks/kernel_rows.py runs end to end (no timings checked): one table row per batch size,
with a figure for Paddle's kernels, oneDNN, and oneDNN on a shape it has set up before."""
import subprocess
import sys

from ernie_testkit import REPO


def test_kernel_rows_prints_every_batch_size_and_kernel():
    out = subprocess.run([sys.executable, "benchmarks/kernel_rows.py", "--shapes", "small",
                          "--texts", "4"], cwd=str(REPO), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines()
            if line.startswith("| small |")]
    assert [int(cells[1]) for cells in rows] == [1, 2, 4, 8, 16, 32]
    for cells in rows:
        figures = [float(c) for c in cells[2:]]
        assert len(figures) == 3 and all(f > 0 for f in figures), cells
    assert "shape seen before" in out.stdout
