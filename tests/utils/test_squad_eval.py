"""utils/squad_eval.py against hand-computed cases and torchmetrics' SQuAD metric (the
official v1.1 logic), on the five real SQuAD questions of tests/fixtures. Generated questions
with every edge case: tests/finetune/test_mrc_scorer_oracles.py."""
import json
import random
import subprocess
import sys

import pytest

from ernie_testkit import REPO, SQUAD_FIXTURE, squad_by_torchmetrics
from utils import squad_eval


def test_normalize_answer_by_hand():
    assert squad_eval.normalize_answer("The  Cat, a dog!") == "cat dog"
    assert squad_eval.normalize_answer("Anthem of the Seas") == "anthem of seas"
    assert squad_eval.normalize_answer("  U.S.-based\n") == "usbased"
    assert squad_eval.normalize_answer("theory") == "theory"       # articles: whole words only


def test_f1_and_em_by_hand():
    # prediction [cat, sat] vs gold [cat, sat, on, mat]: p = 1, r = 1/2, f1 = 2/3
    assert squad_eval.f1_score("the cat sat", "A cat sat on the mat") == pytest.approx(2 / 3)
    # bag of tokens: "a a b" vs "a b b" share one a and one b -> p = r = 2/3
    assert squad_eval.f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert squad_eval.f1_score("the", "a") == 0                     # both normalise to nothing
    assert squad_eval.exact_match_score("The Virgin Mary.", "virgin mary")
    assert not squad_eval.exact_match_score("Virgin Mary statue", "virgin mary")


def test_evaluate_max_over_golds_and_unanswered(capsys):
    data = [{"paragraphs": [{"context": "", "qas": [
        {"id": "a", "answers": [{"text": "red apple"}, {"text": "apple"}]},
        {"id": "b", "answers": [{"text": "blue sky"}]},
        {"id": "c", "answers": [{"text": "x"}]}]}]}]
    scores = squad_eval.evaluate(data, {"a": "the apple", "b": "sky"})
    # a: EM 1 (apple), F1 1; b: EM 0, F1 2/3; c: unanswered -> 0
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert "Unanswered question c" in capsys.readouterr().err


def _spans(context, rng, n):
    words = context.split(" ")
    out = []
    for _ in range(n):
        i = rng.randrange(len(words))
        out.append(" ".join(words[i:i + rng.randint(1, 6)]))
    return out


def test_matches_official_logic_on_real_squad_questions(tmp_path):
    data = json.loads(SQUAD_FIXTURE.read_text(encoding="utf-8"))
    qas = [(p["context"], q) for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]
    rng = random.Random(0)
    for trial in range(40):
        preds = {}
        for context, q in qas:
            choice = rng.random()
            if choice < 0.2:
                continue                                   # unanswered
            if choice < 0.5:
                gold = rng.choice(q["answers"])["text"]
                preds[q["id"]] = rng.choice([gold, gold.upper() + ".", "the " + gold,
                                             gold[: max(1, len(gold) // 2)]])
            else:
                preds[q["id"]] = _spans(context, rng, 1)[0]
        path = tmp_path / ("p%d.json" % trial)
        path.write_text(json.dumps(preds), encoding="utf-8")
        em, f1, avg, total = squad_eval.eval_file(str(SQUAD_FIXTURE), str(path))
        want = squad_by_torchmetrics(data, preds)
        assert total == 5
        assert (em, f1) == (want["exact_match"], want["f1"])
        assert avg == pytest.approx((em + f1) / 2)


def test_cli_prints_json(tmp_path):
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"5733b1da4776f41900661068": "1882"}))
    out = subprocess.run([sys.executable, "-m", "utils.squad_eval", str(SQUAD_FIXTURE), str(pred)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert json.loads(out.stdout) == {"exact_match": 20.0, "f1": 20.0}
    assert out.stderr.count("Unanswered question") == 4
