"""finetune.classifier.write_predictions: the 2019 `--do_test` file, one line per example in
input order, with a qid field on every line when the test file has a qid column (empty where a
line's qid is), on none otherwise."""
import numpy as np
import pytest

from finetune import classifier


class Head:
    is_regression = False


@pytest.mark.parametrize("qids, firsts", [
    ([None, None], None),                  # no qid column
    (["", "3"], ["", "3"]),                # a column, one qid empty
    (["7", "3"], ["7", "3"]),
])
def test_every_line_has_the_same_fields(tmp_path, monkeypatch, qids, firsts):
    probs = np.array([[0.9, 0.1], [0.2, 0.8]], dtype="float32")
    monkeypatch.setattr(classifier, "run_inference", lambda *a: (probs, None, qids, 0.0))
    path = tmp_path / "test_result.0.1"
    classifier.write_predictions(Head(), None, [], str(path))
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    assert [len(fields) for fields in lines] == [2 if firsts is None else 3] * 2
    if firsts is not None:
        assert [fields[0] for fields in lines] == firsts
    assert [float(fields[-2]) for fields in lines] == [0.0, 1.0]
