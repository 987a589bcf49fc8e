"""plot_logs reads the 2019 log lines of every task and draws a PNG."""
import pytest

from tools.plot_logs import main, parse
from utils.errors import UsageError

LOG = ("epoch: 0, progress: 10/100, step: 10, ave loss: 0.690000, ave acc: 0.5, "
       "speed: 3.0 steps/s\n"
       "[dev evaluation] ave loss: 0.6, acc:0.700000, data_num: 10, elapsed time: 1.0 s, "
       "file: /d/dev.tsv, epoch: 0, steps: 10\n"
       "epoch: 0, progress: 20/100, step: 20, ave loss: 0.500000, ave acc: 0.7, "
       "speed: 3.0 steps/s\n"
       "[dev evaluation] f1: 0.810000, precision: 0.8, recall: 0.82, elapsed time: 1.0 s, "
       "file: /d/dev.tsv, epoch: 0, steps: 20\n"
       "epoch: 1, progress: 2/4, step: 30, loss: 7.100000, ppl: 1200.0, next_sent_acc: 0.5, "
       "speed: 1.0 steps/s, file: a.gz, mask_type: mask_word\n"
       "[validation_set] epoch: 1, step: 30, loss: 7.0, global ppl: 1100.5, "
       "batch-averged ppl: 1000.0, next_sent_acc: 0.5, speed: 1.0 steps/s\n")


def test_parse_and_plot(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(LOG)
    train, dev = parse(str(log))
    assert train == {"train loss": [(10, 0.69), (20, 0.5), (30, 7.1)]}
    assert dev == {"acc dev.tsv": [(10, 0.7)], "f1 dev.tsv": [(20, 0.81)],
                   "valid ppl": [(30, 1100.5)]}
    assert main(["--output", str(tmp_path / "c.png"), "%s:task" % log]) == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["--output", str(tmp_path / "new" / "c.png"), str(log)]) == 0
    assert (tmp_path / "new" / "c.png").is_file()


def test_a_log_without_curves_and_an_output_that_is_no_png_are_refused(tmp_path):
    empty, log = tmp_path / "empty.log", tmp_path / "run.log"
    empty.write_text("nothing to plot here\n")
    log.write_text(LOG)
    with pytest.raises(UsageError, match="empty.log: no training or evaluation log line"):
        main(["--output", str(tmp_path / "c.png"), str(empty)])
    with pytest.raises(UsageError, match="ending in .png"):
        main(["--output", str(tmp_path / "curves"), str(log)])
    with pytest.raises(UsageError, match="a directory, expected a log file"):
        main(["--output", str(tmp_path / "c.png"), str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.log", "run.log"]


def test_a_multitask_log_gives_a_curve_a_task(tmp_path):
    log = tmp_path / "ernie2.log"
    log.write_text(
        "current learning_rate:0.001000\n"
        "stage: 0, step: 10, task: knowledge_masking, loss: 7.500000, ppl: 1808.0, acc: 0.1, "
        "task_steps: 10, speed: 1.0 steps/s\n"
        "current learning_rate:0.000900\n"
        "stage: 1, step: 20, task: knowledge_masking, loss: 7.000000, ppl: 1096.6, acc: 0.1, "
        "task_steps: 6, speed: 1.0 steps/s\n"
        "stage: 1, step: 20, task: capitalization, loss: 0.600000, acc: 0.7, task_steps: 4, "
        "speed: 1.0 steps/s\n")
    train, dev = parse(str(log))
    assert train == {"loss knowledge_masking": [(10, 7.5), (20, 7.0)],
                     "loss capitalization": [(20, 0.6)]} and dev == {}
    assert main(["--output", str(tmp_path / "c.png"), str(log)]) == 0


def test_every_curve_is_drawn_however_many(tmp_path, monkeypatch):
    import matplotlib.axes
    drawn = []
    original = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda self, *a, **k: (
        drawn.append(k.get("label")), original(self, *a, **k))[1])
    tasks = ["task%d" % i for i in range(9)]
    log = tmp_path / "many.log"
    log.write_text("".join("stage: 0, step: 10, task: %s, loss: 1.0, acc: 0.5, task_steps: 1, "
                           "speed: 1.0 steps/s\n" % t for t in tasks))
    assert main(["--output", str(tmp_path / "c.png"), str(log)]) == 0
    assert sorted(drawn) == ["loss " + t for t in tasks]
