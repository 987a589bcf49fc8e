"""run_mrc.py end to end with a tiny model: on the real SQuAD questions (English, SQuAD v1.1
scoring) and on the People's Daily QA set (Chinese, CMRC 2018 scoring, with a context five times
longer than --max_seq_len). The EM/F1 a run prints must equal the scores of the
predictions.json it wrote, by torchmetrics' SQuAD metric (English) and by utils/cmrc2018_eval.py
(Chinese; tests/finetune/test_mrc_scorer_oracles.py checks it against the CMRC 2018 rules); bad
input stops the CLI with one line naming the question and nothing written."""
import contextlib
import io
import json
import subprocess
import sys

import pytest

import run_mrc
from ernie_testkit import MRC_EVAL_LINE as EVAL_LINE
from ernie_testkit import MRC_TRAIN_LINE as TRAIN_LINE
from ernie_testkit import REPO, SQUAD_FIXTURE, squad_by_torchmetrics, write_tiny_model
from tokenization import BasicTokenizer
from tools.prepare_data import build_mrc
from utils import cmrc2018_eval
from utils.errors import run_cli


def run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_mrc.main([str(a) for a in argv]) == 0
    return out.getvalue().splitlines()


def evals(lines):
    return {m.group(1): tuple(float(m.group(i)) for i in (2, 3, 4, 5))
            for m in map(EVAL_LINE.match, lines) if m}


def contexts_of(data):
    return {q["id"]: p["context"] for a in data["data"] for p in a["paragraphs"]
            for q in p["qas"]}


# ---- English: SQuAD v1.1 ------------------------------------------------------------------
@pytest.fixture(scope="module")
def english(tmp_path_factory):
    d = tmp_path_factory.mktemp("mrc_en")
    data = json.loads(SQUAD_FIXTURE.read_text(encoding="utf-8"))
    texts = []
    for a in data["data"]:
        for p in a["paragraphs"]:
            texts.append(p["context"])
            for q in p["qas"]:
                texts.append(q["question"])
                q["answers"] = q["answers"][:1]          # training: exactly one answer
    (d / "train.json").write_text(json.dumps(data), encoding="utf-8")
    words = sorted({w for t in texts for w in BasicTokenizer().tokenize(t)})
    chars = sorted({c for w in words for c in w})
    # every other word is missing, so many words are split into ## pieces
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + words[::2] + \
        ["##" + c for c in chars] + [c for c in chars if c not in words[::2]]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    write_tiny_model(d / "model", ["x"], max_pos=128)
    cfg = json.loads((d / "model" / "ernie_config.json").read_text())
    cfg["vocab_size"] = len(vocab)
    (d / "model" / "ernie_config.json").write_text(json.dumps(cfg))
    lines = run(["--use_cuda", "false", "--for_cn", "false", "--vocab_path", d / "vocab.txt",
                 "--ernie_config_path", d / "model" / "ernie_config.json",
                 "--train_set", d / "train.json", "--dev_set", SQUAD_FIXTURE, "--do_test", "false",
                 "--max_seq_len", 128, "--doc_stride", 48, "--max_query_length", 24,
                 "--batch_size", 4, "--epoch", 16, "--learning_rate", 3e-3,
                 "--skip_steps", 16, "--validation_steps", 50, "--save_steps", 1000,
                 "--checkpoints", d / "ckpt", "--random_seed", 1, "--max_answer_length", 30,
                 "--enable_ce"])
    return d, lines


def test_english_logs_and_files(english):
    d, lines = english
    train = [ln for ln in lines if "progress" in ln]
    assert len(train) == 7 and all(TRAIN_LINE.match(ln) for ln in train), train
    losses = [float(ln.split("ave loss: ")[1].split(",")[0]) for ln in train]
    assert losses[-1] < losses[0] / 2
    # 5 questions over contexts of ~170 tokens: several windows (features) each
    assert "Num train examples: 26" in lines and "Num train questions: 5" in lines
    assert train[-1].startswith("epoch: 15, progress: 26/26, step: 112,")
    assert sorted(evals(lines)) == ["100_dev", "50_dev", "dev"]
    assert lines.index("Final validation result:") < \
        [i for i, ln in enumerate(lines) if ln.startswith("[dev evaluation]")][0]
    names = sorted(p.name for p in (d / "ckpt").iterdir())
    assert names == ["100_dev_nbest_predictions.json", "100_dev_predictions.json",
                     "50_dev_nbest_predictions.json", "50_dev_predictions.json",
                     "dev_nbest_predictions.json", "dev_predictions.json", "step_112"]


def test_enable_ce_prints_the_kpi_lines_of_the_run(english):
    _, lines = english
    kpis = dict(ln.split("\t")[1:] for ln in lines if ln.startswith("kpis\t"))
    assert sorted(kpis) == ["dev_avg_card1", "dev_em_card1", "dev_f1_card1",
                            "dev_question_num_card1", "train_duration_card1", "train_loss_card1"]
    train = [ln for ln in lines if "progress" in ln]
    assert "ave loss: %s," % kpis["train_loss_card1"] in train[-2]
    em, f1, avg, num = evals(lines)["dev"]
    assert (float(kpis["dev_em_card1"]), float(kpis["dev_f1_card1"])) == \
        pytest.approx((em, f1), abs=1e-3)
    assert float(kpis["dev_question_num_card1"]) == num


def test_english_scores_equal_official_squad_logic(english):
    d, lines = english
    data = json.loads(SQUAD_FIXTURE.read_text(encoding="utf-8"))
    contexts = contexts_of(data)
    for phase, (em, f1, avg, n) in evals(lines).items():
        preds = json.loads((d / "ckpt" / ("%s_predictions.json" % phase)).read_text())
        assert sorted(preds) == sorted(contexts) and n == 5
        assert all(text and text in contexts[qid] for qid, text in preds.items())
        want = squad_by_torchmetrics(data, preds)
        want_em, want_f1 = want["exact_match"], want["f1"]
        assert abs(em - want_em) <= 1e-6 and abs(f1 - want_f1) <= 1e-6
        assert abs(avg - (want_em + want_f1) / 2) <= 1e-6
    assert evals(lines)["dev"][1] > 25                  # it learned some of its 5 questions


# ---- Chinese: People's Daily QA -----------------------------------------------------------
def add_long_question(data, other, length):
    """Prepend other contexts to the first context until it is `length` characters long."""
    para = data["data"][0]["paragraphs"][0]
    filler = "".join(p["context"] for a in other["data"] for p in a["paragraphs"])
    pad = filler[:length - len(para["context"])]
    para["context"] = pad + para["context"]
    for q in para["qas"]:
        for ans in q["answers"]:
            ans["answer_start"] += len(pad)
    return para["qas"][0]["id"], para["context"]


@pytest.fixture(scope="module")
def chinese(tmp_path_factory):
    d = tmp_path_factory.mktemp("mrc_zh")
    build_mrc(str(d), seed=1, max_lines=200, verbose=False)
    sets = {n: json.loads((d / "pd_qa" / ("%s.json" % n)).read_text(encoding="utf-8"))
            for n in ("train", "dev", "test")}
    long_ids = {}
    for name in ("dev", "test"):
        long_ids[name] = add_long_question(sets[name], sets["train"], 5 * 64)
        (d / ("%s.json" % name)).write_text(json.dumps(sets[name], ensure_ascii=False),
                                            encoding="utf-8")
    texts = [p["context"] + q["question"] for s in sets.values() for a in s["data"]
             for p in a["paragraphs"] for q in p["qas"]]
    write_tiny_model(d / "model", texts, max_pos=64)
    flags = ["--use_cuda", "false", "--for_cn", "true", "--vocab_path", d / "model" / "vocab.txt",
             "--ernie_config_path", d / "model" / "ernie_config.json",
             "--dev_set", d / "dev.json", "--test_set", d / "test.json",
             "--max_seq_len", 64, "--doc_stride", 16, "--max_query_length", 16,
             "--batch_size", 32, "--predict_batch_size", 7, "--checkpoints", d / "ckpt"]
    lines = run(flags + ["--do_train", "true", "--train_set", d / "pd_qa" / "train.json",
                         "--epoch", 1, "--learning_rate", 1e-3, "--skip_steps", 5,
                         "--validation_steps", 15, "--random_seed", 2])
    return d, lines, sets, long_ids, flags


def test_chinese_scores_equal_cmrc2018_logic(chinese):
    d, lines, sets, long_ids, _ = chinese
    found = evals(lines)
    steps = max(int(p.name[5:]) for p in (d / "ckpt").glob("step_*"))
    assert 15 < steps < 30
    assert sorted(found) == ["15_dev", "15_test", "dev", "test"]
    assert lines.index("Final test result:") > lines.index("Final validation result:")
    for phase, (em, f1, avg, n) in found.items():
        name = phase.split("_")[-1]
        data = json.loads((d / ("%s.json" % name)).read_text(encoding="utf-8"))
        preds = json.loads((d / "ckpt" / ("%s_predictions.json" % phase)).read_text(
            encoding="utf-8"))
        contexts = contexts_of(data)
        assert sorted(preds) == sorted(contexts) and n == len(contexts)
        assert all(text and text in contexts[qid] for qid, text in preds.items())
        qid, context = long_ids[name]
        assert len(context) == 320 and preds[qid] in context
        want_f1, want_em, _, skipped = cmrc2018_eval.evaluate(data, preds)
        assert skipped == 0
        assert abs(em - want_em) <= 1e-6 and abs(f1 - want_f1) <= 1e-6
        assert abs(avg - (want_em + want_f1) / 2) <= 1e-6


def test_chinese_evaluation_only_run_reproduces_final_predictions(chinese, tmp_path):
    d, lines, _, _, flags = chinese
    step = max((d / "ckpt").glob("step_*"), key=lambda p: int(p.name[5:]))
    flags = list(flags)
    flags[flags.index("--checkpoints") + 1] = tmp_path / "eval"
    again = run(flags + ["--do_train", "false", "--init_checkpoint", step])
    assert evals(again) == {k: v for k, v in evals(lines).items() if k in ("dev", "test")}
    for name in ("dev", "test"):
        assert json.loads((tmp_path / "eval" / ("%s_predictions.json" % name)).read_text()) == \
            json.loads((d / "ckpt" / ("%s_predictions.json" % name)).read_text())


# ---- bad input ----------------------------------------------------------------------------
def squad_one(context, qid, answers):
    return {"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": qid, "question": "哪里？", "answers": answers}]}]}]}


BAD = {
    "answer_start": ("train", squad_one("北京是首都。", "pd-7",
                                        [{"text": "北京", "answer_start": 2}]),
                     "question pd-7: answer_start 2 does not match"),
    "two_answers": ("train", squad_one("北京是首都。", "pd-8", [{"text": "北京", "answer_start": 0},
                                                         {"text": "首都", "answer_start": 3}]),
                    "question pd-8: has 2 answers; a training question must have exactly one"),
    "empty_context": ("dev", squad_one("", "pd-9", [{"text": "北京", "answer_start": 0}]),
                      "question pd-9: the context is empty"),
    "not_squad": ("test", [{"context": "x"}], "not SQuAD-shaped"),
}


def bad_flags(chinese, tmp_path, case):
    d, _, _, _, flags = chinese
    which, obj, _ = BAD[case]
    bad = tmp_path / ("%s.json" % which)
    bad.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    flags = list(flags)
    flags[flags.index("--checkpoints") + 1] = tmp_path / "ckpt"
    if which != "train":
        flags[flags.index("--%s_set" % which) + 1] = bad
    return flags + ["--do_train", "true", "--train_set",
                    bad if which == "train" else d / "pd_qa" / "train.json"], str(bad)


@pytest.mark.parametrize("case", ["answer_start", "not_squad"])
@pytest.mark.slow
def test_bad_input_through_the_cli(chinese, tmp_path, case):
    flags, bad = bad_flags(chinese, tmp_path, case)
    proc = subprocess.run([sys.executable, "run_mrc.py"] + [str(f) for f in flags], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1, proc.stderr
    assert err[0].startswith("error: %s: " % bad) and BAD[case][2] in err[0]
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("case", ["two_answers", "empty_context"])
def test_bad_input_in_process(chinese, tmp_path, case, capsys):
    flags, bad = bad_flags(chinese, tmp_path, case)
    with pytest.raises(SystemExit) as e:
        run_cli(run_mrc.main, [str(f) for f in flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 1 and len(err) == 1 and BAD[case][2] in err[0] and bad in err[0]
    assert not (tmp_path / "ckpt").exists()


def test_usage_errors(chinese, tmp_path, capsys):
    d, _, _, _, flags = chinese
    for change, message in ((("--max_seq_len", "65"), "max_position_embeddings"),
                            (("--max_query_length", "62"), "leaves no room"),
                            (("--dev_set", "a.json,b.json"), "takes one file")):
        f = list(flags) + ["--do_train", "false", "--init_checkpoint", d / "model"]
        f[f.index(change[0]) + 1] = change[1]
        with pytest.raises(SystemExit) as e:
            run_cli(run_mrc.main, [str(x) for x in f])
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and message in err[0], err
