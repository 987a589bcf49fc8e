"""script/en_glue: cvt.py on a raw-GLUE-shaped folder, then task.sh runs on its output."""
import json
import os
import subprocess
import sys

import pytest

from ernie_testkit import REPO, write_random_params

SENTS = ["the cat sat on the mat .", "a dog ran in the park .", "it is a good movie .",
         "this film was bad .", "he likes green tea .", "she reads old books ."]


def raw_glue(root):
    """A few rows per task, laid out as the GLUE download lays them out."""
    def put(rel, lines):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(l + "\n" for l in lines), encoding="utf-8")

    s = SENTS
    cola = ["src\t%d\t\t%s" % (i % 2, t) for i, t in enumerate(s)]
    put("CoLA/train.tsv", cola)
    put("CoLA/dev.tsv", cola[:4])
    put("CoLA/test.tsv", ["index\tsentence"] + ["%d\t%s" % (i, t) for i, t in enumerate(s[:3])])
    sst = ["sentence\tlabel"] + ["%s\t%d" % (t, i % 2) for i, t in enumerate(s)]
    put("SST-2/train.tsv", sst)
    put("SST-2/dev.tsv", sst)
    put("SST-2/test.tsv", ["index\tsentence"] + ["%d\t%s" % (i, t) for i, t in enumerate(s)])
    mrpc = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"] + [
        "%d\t1\t2\t%s\t%s" % (i % 2, a, b) for i, (a, b) in enumerate(zip(s, s[1:]))]
    put("MRPC/train.tsv", mrpc)
    put("MRPC/dev.tsv", mrpc)
    put("MRPC/test.tsv", ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"] + [
        "%d\t1\t2\t%s\t%s" % (i, a, b) for i, (a, b) in enumerate(zip(s, s[1:]))])
    stsb_head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
    stsb = [stsb_head + "\tscore"] + ["%d\tg\tf\t2012\t0\ts\ts\t%s\t%s\t%.1f" % (i, a, b, i * 0.9)
                                      for i, (a, b) in enumerate(zip(s, s[1:]))]
    put("STS-B/train.tsv", stsb)
    put("STS-B/dev.tsv", stsb)
    put("STS-B/test.tsv", [stsb_head] + ["%d\tg\tf\t2012\t0\ts\ts\t%s\t%s" % (i, a, b)
                                         for i, (a, b) in enumerate(zip(s, s[1:]))])
    qqp = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"] + [
        "%d\t1\t2\t%s\t%s\t%d" % (i, a, b, i % 2) for i, (a, b) in enumerate(zip(s, s[1:]))]
    put("QQP/train.tsv", qqp + ["99\t1\t2\tbroken row"])
    put("QQP/dev.tsv", qqp)
    put("QQP/test.tsv", ["id\tquestion1\tquestion2"] + ["%d\t%s\t%s" % (i, a, b)
                                                       for i, (a, b) in enumerate(zip(s, s[1:]))])
    mnli_train = ["\t".join(["index", "promptID", "pairID", "genre", "p1", "p2", "p3", "p4",
                             "sentence1", "sentence2", "label1", "gold_label"])]
    names = ["contradiction", "neutral", "entailment"]
    mnli_train += ["%d\tp\tq\tg\tx\tx\tx\tx\t%s\t%s\t%s\t%s" % (i, a, b, names[i % 3],
                                                               names[i % 3])
                   for i, (a, b) in enumerate(zip(s, s[1:]))]
    mnli_dev = [mnli_train[0] + "\tlabel2\tlabel3\tlabel4\tlabel5"] + [
        "%d\tp\tq\tg\tx\tx\tx\tx\t%s\t%s\t%s\ta\tb\tc\td\t%s" % (i, a, b, names[i % 3],
                                                               names[(i + 1) % 3])
        for i, (a, b) in enumerate(zip(s, s[1:]))]
    mnli_test = [mnli_train[0][:-len("\tlabel1\tgold_label")]] + [
        "%d\tp\tq\tg\tx\tx\tx\tx\t%s\t%s" % (i, a, b) for i, (a, b) in enumerate(zip(s, s[1:]))]
    put("MNLI/train.tsv", mnli_train)
    for part in ("matched", "mismatched"):
        put("MNLI/dev_%s.tsv" % part, mnli_dev)
        put("MNLI/test_%s.tsv" % part, mnli_test)
    for task in ("QNLI", "RTE"):
        rows = ["index\tquestion\tsentence\tlabel"] + [
            "%d\t%s\t%s\t%s" % (i, a, b, ["entailment", "not_entailment"][i % 2])
            for i, (a, b) in enumerate(zip(s, s[1:]))]
        put(task + "/train.tsv", rows)
        put(task + "/dev.tsv", rows)
        put(task + "/test.tsv", ["index\tquestion\tsentence"] + [
            "%d\t%s\t%s" % (i, a, b) for i, (a, b) in enumerate(zip(s, s[1:]))])
    wnli = ["index\tsentence1\tsentence2\tlabel"] + ["%d\t%s\t%s\t%d" % (i, a, b, i % 2)
                                                     for i, (a, b) in enumerate(zip(s, s[1:]))]
    put("WNLI/train.tsv", wnli)
    put("WNLI/dev.tsv", wnli)
    put("WNLI/test.tsv", ["index\tsentence1\tsentence2"] + [
        "%d\t%s\t%s" % (i, a, b) for i, (a, b) in enumerate(zip(s, s[1:]))])
    put("diagnostic/diagnostic.tsv", ["index\tsentence1\tsentence2"] + [
        "%d\t%s\t%s" % (i, a, b) for i, (a, b) in enumerate(zip(s, s[1:]))])


@pytest.fixture(scope="module")
def glue(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue")
    raw_glue(root / "raw")
    proc = subprocess.run(["sh", str(REPO / "script/en_glue/preprocess/cvt.sh"),
                           str(root / "raw")], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return root / "glue_data_processed"


def read(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [l.split("\t") for l in lines[1:]]


def test_cvt_layouts(glue):
    assert read(glue / "CoLA/train.tsv") == (["label", "text_a"],
                                             [[str(i % 2), t] for i, t in enumerate(SENTS)])
    head, rows = read(glue / "CoLA/test.tsv")
    assert head == ["qid", "text_a", "label"] and rows[1] == ["1", SENTS[1], "-1"]
    assert read(glue / "SST-2/dev.tsv")[1][0] == ["0", SENTS[0]]
    assert read(glue / "MRPC/train.tsv")[1][1] == [SENTS[1], SENTS[2], "1"]
    assert read(glue / "STS-B/train.tsv")[1][2] == [SENTS[2], SENTS[3], "1.8"]
    assert read(glue / "STS-B/test.tsv")[1][0] == ["0", SENTS[0], SENTS[1], "-1"]
    assert len(read(glue / "QQP/train.tsv")[1]) == 5  # the broken row is skipped
    assert read(glue / "MNLI/train.tsv")[1][:3] == [[SENTS[0], SENTS[1], "0"],
                                                   [SENTS[1], SENTS[2], "1"],
                                                   [SENTS[2], SENTS[3], "2"]]
    assert read(glue / "MNLI/m/dev.tsv")[1][0][2] == "1"  # gold label is the last column
    assert read(glue / "MNLI/mm/test.tsv")[0] == ["qid", "text_a", "text_b", "label"]
    assert read(glue / "QNLI/dev.tsv")[1][1][2] == "0"
    assert read(glue / "RTE/train.tsv")[1][0][2] == "1"
    assert read(glue / "WNLI/test.tsv")[1][0] == ["0", SENTS[0], SENTS[1], "-1"]
    assert read(glue / "MNLI/diagnostic.tsv")[1][0][-1] == "-1"


@pytest.fixture(scope="module")
def english_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model_en")
    words = sorted({w for t in SENTS for w in t.split()})
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    (d / "vocab.txt").write_text("\n".join(tokens) + "\n")  # the English one-token-a-line layout
    (d / "ernie_config.json").write_text(json.dumps(dict(
        attention_probs_dropout_prob=0.1, hidden_act="gelu", hidden_dropout_prob=0.1,
        hidden_size=16, initializer_range=0.02, max_position_embeddings=512,
        num_attention_heads=2, num_hidden_layers=1, sent_type_vocab_size=4,
        task_type_vocab_size=16, vocab_size=len(tokens))))
    return write_random_params(d)


@pytest.mark.parametrize("task,outputs", [
    ("CoLA", ["output/test_out.1.3e-5.64.3.*.tsv.*"]),
    ("STS-B", ["output/test_out.1.5e-5.16.3.*.tsv.*"]),
    ("MNLI", ["output/test_out.1.m.tsv.*", "output/test_out.1.mm.tsv.*",
              "output/test_out.1.m.diagnostic.tsv"]),
])
def test_task_script_runs(glue, english_model, tmp_path, task, outputs):
    env = dict(os.environ, MODEL_PATH=str(english_model), TASK_DATA_PATH=str(glue), RUNS="1",
               PYTHON=sys.executable)
    proc = subprocess.run(["sh", str(REPO / "script/en_glue/ernie_base" / task / "task.sh"),
                           "--epoch", "1", "--batch_size", "4", "--max_seq_len", "32"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "[dev evaluation]" in proc.stdout
    logs = list((tmp_path / "log").glob("job.1.*.log"))
    assert len(logs) == 1 and "[dev evaluation]" in logs[0].read_text()
    for pattern in outputs:
        assert list(tmp_path.glob(pattern)), (pattern, sorted(p.name for p in tmp_path.rglob("*")))
