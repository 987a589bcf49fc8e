"""ERNIE 2.0 continual multi-task pretraining: the json config, the heads and their 2019-style
names, task ids, and a real run on People's Daily where every task's loss is logged and falls."""
import collections
import contextlib
import io
import json
import re

import numpy as np
import pytest

import train
from model.ernie import ErnieConfig, feed, input_spec
from model.multitask import ErnieMultiTask, task_input_names
from pretraining.multitask import FreshGradOptimizer, MultiTaskConfig, make_task_reader, task_loss
from tools import pretrain_data
from utils.errors import UsageError
from utils.format_paddle2019 import read_legacy_dir
from utils.optimization import make_optimizer

pytest.importorskip("snownlp")

ENGLISH = [
    "The Yangtze River flows through China. It is the longest river in Asia. Shanghai lies at "
    "its mouth. Boats carry goods from Wuhan to the sea.",
    "Paris is the capital of France. The Seine runs through the city. Many tourists visit the "
    "Louvre every year. In May the gardens are green.",
    "Alice met Bob in London last May. They talked about the weather. Then they went to the "
    "British Museum. Later Carol joined them for dinner.",
    "Mount Everest stands between Nepal and Tibet. Climbers from Japan and Peru try it each "
    "spring. Few reach the top. The air there is thin.",
]
LINE = re.compile(r"^stage: (\d+), step: (\d+), task: (\w+), loss: ([\d.]+)(?:, ppl: [\d.]+)?, "
                  r"acc: [\d.]+, task_steps: (\d+), speed: [\d.]+ steps/s$")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("mt")
    pretrain_data.main(["people_daily", "--output_dir", str(d / "pd"), "--max_lines", "400",
                        "--min_count", "1", "--max_seq_len", "96", "--valid_fraction", "0"])
    vocab = [ln.split("\t")[0] for ln in
             (d / "pd" / "vocab.txt").read_text(encoding="utf-8").splitlines()]
    # English pieces for the capitalization task (the Chinese vocabulary has few)
    extra = sorted({w.lower() for t in ENGLISH for w in re.findall(r"[A-Za-z]+", t)}
                   - set(vocab))
    vocab = vocab[:-1] + extra + ["[UNK]"]
    (d / "vocab.txt").write_text("".join("%s\t%d\n" % (t, i) for i, t in enumerate(vocab)),
                                 encoding="utf-8")
    (d / "english.txt").write_text("\n".join(ENGLISH) + "\n", encoding="utf-8")
    (d / "ernie_config.json").write_text(json.dumps(dict(
        attention_probs_dropout_prob=0.0, hidden_act="gelu", hidden_dropout_prob=0.0,
        hidden_size=32, initializer_range=0.02, max_position_embeddings=128,
        num_attention_heads=4, num_hidden_layers=2, sent_type_vocab_size=4,
        task_type_vocab_size=8, use_task_id=True, vocab_size=len(vocab))))
    return d


def write_config(d, tasks, stages, name="mt.json"):
    path = d / name
    path.write_text(json.dumps({"tasks": tasks, "stages": stages}), encoding="utf-8")
    return str(path)


TASKS = [
    {"name": "knowledge_masking", "data": "pd/train_filelist", "task_id": 0},
    {"name": "capitalization", "data": "english.txt", "task_id": 1},
    {"name": "sentence_reordering", "data": "pd/documents.txt", "task_id": 2},
    {"name": "token_document_relation", "data": "pd/documents.txt", "task_id": 3},
    {"name": "sentence_distance", "data": "pd/documents.txt", "task_id": 4},
    {"name": "ir_relevance", "kind": "sentence_pair", "data": "pd/ir_relevance.tsv",
     "num_labels": 2, "task_id": 5},
]


def flags(d, config, *extra):
    return ["--use_cuda", "false", "--multitask_config", config, "--vocab_path",
            str(d / "vocab.txt"), "--ernie_config_path", str(d / "ernie_config.json"),
            "--max_seq_len", "96", "--batch_size", "1536", "--learning_rate", "2e-3",
            "--warmup_steps", "0", "--weight_decay", "0.0", "--skip_steps", "20",
            "--save_steps", "1000", "--random_seed", "2"] + list(extra)


@pytest.fixture(scope="module")
def run(data):
    d = data
    config = write_config(d, TASKS, [
        {"steps": 40, "tasks": {"knowledge_masking": 1}},
        {"steps": 60, "tasks": {"knowledge_masking": 1, "capitalization": 1,
                                "sentence_reordering": 1}},
        {"steps": 180, "tasks": {"knowledge_masking": 1, "capitalization": 0.5,
                                 "sentence_reordering": 1, "token_document_relation": 1,
                                 "sentence_distance": 1, "ir_relevance": 1}}])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = train.main(flags(d, config, "--checkpoints", str(d / "ckpt"),
                              "--export_model_dir", str(d / "model")))
    assert rc == 0
    return d, out.getvalue().splitlines()


# what a 2-layer, 32-wide model learns within this test's few hundred steps; sentence distance
# and IR relevance need longer runs (they are trained and logged here, not checked for a fall)
LEARNS_FAST = ("knowledge_masking", "capitalization", "sentence_reordering",
               "token_document_relation")


def test_every_task_is_logged_and_its_loss_falls(run):
    d, lines = run
    logged = [LINE.match(ln) for ln in lines if ln.startswith("stage: ")]
    assert logged and all(logged), [ln for ln in lines if ln.startswith("stage: ")][:3]
    per_task = collections.defaultdict(list)
    for m in logged:
        per_task[m.group(3)].append((int(m.group(1)), int(m.group(2)), float(m.group(4)),
                                     int(m.group(5))))
    assert sorted(per_task) == sorted(t["name"] for t in TASKS)
    # tasks join at their stage and keep training afterwards
    assert per_task["knowledge_masking"][0][:2] == (1, 20)
    assert min(s for s, *_ in per_task["capitalization"]) == 2
    assert min(s for s, *_ in per_task["ir_relevance"]) == 3
    assert {s for s, *_ in per_task["knowledge_masking"]} == {1, 2, 3}
    assert sum(n for *_, n in (x for v in per_task.values() for x in v)) == 280
    for name in LEARNS_FAST:
        losses = [loss for _, _, loss, _ in per_task[name]]
        k = max(1, len(losses) // 3)
        assert np.mean(losses[-k:]) < np.mean(losses[:k]), (name, losses)
    assert "stage 3 begins at step 100: " in "\n".join(lines)


def test_checkpoints_and_head_names(run):
    d, _ = run
    names = sorted(p.name for p in (d / "ckpt").iterdir())
    assert names == ["stage_1_step_40", "stage_2_step_100", "stage_3_step_280", "step_280"]
    params = read_legacy_dir(str(d / "ckpt" / "stage_3_step_280"))
    for task in ("capitalization", "sentence_reordering", "token_document_relation",
                 "sentence_distance", "ir_relevance"):
        assert task + "_fc.w_0" in params and task + "_fc.b_0" in params
    assert params["sentence_reordering_fc.w_0"].shape == (32, 9)
    assert params["sentence_distance_fc.w_0"].shape == (32, 3)
    assert params["task_embedding"].shape == (8, 32)
    for name in ("mask_lm_trans_fc.w_0", "mask_lm_trans_layer_norm_scale", "mask_lm_out_fc.b_0"):
        assert name in params
    # heads of stage-3 tasks did not move before stage 3; the encoder did
    stage2 = read_legacy_dir(str(d / "ckpt" / "stage_2_step_100"))
    stage1 = read_legacy_dir(str(d / "ckpt" / "stage_1_step_40"))
    assert np.array_equal(stage1["ir_relevance_fc.w_0"], stage2["ir_relevance_fc.w_0"])
    assert not np.array_equal(stage2["ir_relevance_fc.w_0"], params["ir_relevance_fc.w_0"])
    assert not np.array_equal(stage1["capitalization_fc.w_0"], stage2["capitalization_fc.w_0"])
    assert not np.array_equal(stage1["word_embedding"], stage2["word_embedding"])
    # the task embeddings of the tasks that ran changed, the unused rows did not
    moved = np.abs(params["task_embedding"] - stage1["task_embedding"]).sum(axis=1) > 0
    assert moved[:6].all() and not moved[6:].any()
    assert sorted(p.name for p in (d / "model").iterdir()) == \
        ["ernie_config.json", "params", "vocab.txt"]


def test_continual_run_resumes_from_an_earlier_stage(run, data):
    """A later config with other stages (the same tasks) loads an earlier stage's checkpoint,
    every head included; adding a task: test_continued_run_adds_a_task_with_a_fresh_head."""
    d = data
    config = write_config(d, TASKS, [{"steps": 3, "tasks": {"knowledge_masking": 1,
                                                            "sentence_distance": 1}}],
                          "more.json")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = train.main(flags(d, config, "--checkpoints", str(d / "ckpt2"), "--init_checkpoint",
                              str(d / "ckpt" / "stage_1_step_40")))
    assert rc == 0
    text = out.getvalue()
    assert re.search(r"Loaded \d+ parameters; missing 0; unexpected 0", text), text


def test_task_ids_and_readers(data):
    d = data
    mt = MultiTaskConfig(write_config(d, TASKS, [{"steps": 1, "tasks": ["capitalization"]}],
                                      "ids.json"))
    cfg = ErnieConfig(str(d / "ernie_config.json"))
    args = train.build_parser().parse_args(flags(d, "x"))

    class RT(object):
        trainer_id, num_trainers = 0, 1
    for name, task in mt.tasks.items():
        _, gen = make_task_reader(task, args, cfg, RT(), {}, {})
        batch = next(gen())
        assert np.all(batch["task_ids"] == task.task_id), name
        names = task_input_names(task.kind)
        assert len(feed(batch, names)) == len(input_spec(names))


def test_a_step_moves_only_the_sampled_head(data):
    d = data
    mt = MultiTaskConfig(write_config(d, TASKS, [{"steps": 1, "tasks": ["capitalization"]}],
                                      "one.json"))
    cfg = ErnieConfig(str(d / "ernie_config.json"))
    model = ErnieMultiTask(cfg, mt.tasks)
    opt, _ = make_optimizer(model.parameters(), 1e-2, 0, 10, 0.01)
    opt = FreshGradOptimizer(opt)
    args = train.build_parser().parse_args(flags(d, "x"))

    class RT(object):
        trainer_id, num_trainers = 0, 1
    before = {p.name: p.numpy().copy() for p in model.parameters()}
    for name in ("capitalization", "ir_relevance", "capitalization"):
        task = mt.tasks[name]
        _, gen = make_task_reader(task, args, cfg, RT(), {}, {})
        batch = next(gen())
        loss, _ = task_loss(task, model(name, *feed(batch, task_input_names(task.kind))), batch)
        loss.backward()
        opt.step()
        opt.clear_grad()
    after = {p.name: p.numpy() for p in model.parameters()}
    changed = {n for n in before if not np.array_equal(before[n], after[n])}
    assert {"capitalization_fc.w_0", "ir_relevance_fc.w_0", "word_embedding"} <= changed
    assert not changed & {"sentence_distance_fc.w_0", "sentence_reordering_fc.b_0",
                          "mask_lm_trans_fc.w_0", "mask_lm_out_fc.b_0"}


@pytest.mark.parametrize("tasks,stages,message", [
    ([{"name": "x", "data": "english.txt"}], [{"steps": 1, "tasks": ["x"]}], "unknown kind 'x'"),
    ([{"name": "capitalization", "data": "english.txt", "weight": 1}],
     [{"steps": 1, "tasks": ["capitalization"]}], r"unknown key\(s\) weight"),
    ([{"name": "capitalization", "data": "nowhere.txt"}],
     [{"steps": 1, "tasks": ["capitalization"]}], "nowhere.txt does not exist"),
    ([{"name": "capitalization", "data": "english.txt"}],
     [{"steps": 1, "tasks": ["sentence_distance"]}], "names task 'sentence_distance'"),
    ([{"name": "capitalization", "data": "english.txt"}],
     [{"steps": 0, "tasks": ["capitalization"]}], "steps must be a positive integer"),
    ([{"name": "capitalization", "data": "english.txt"}],
     [{"steps": 2, "tasks": {"capitalization": -1}}], "must be a positive number"),
    ([{"name": "capitalization", "data": "english.txt"}],
     [{"steps": 2, "tasks": {"capitalization": float("nan")}}], "must be a positive number"),
    ([{"name": "capitalization", "data": "pd"}],
     [{"steps": 1, "tasks": ["capitalization"]}], "data .*pd is a folder, not a file"),
    ([{"name": "a", "kind": "knowledge_masking", "data": "pd/train_filelist"},
      {"name": "b", "kind": "knowledge_masking", "data": "pd/train_filelist"}],
     [{"steps": 1, "tasks": ["a"]}], "heads would share"),
    ([{"name": "rel", "kind": "ir_relevance", "data": "pd/ir_relevance.tsv"}],
     [{"steps": 1, "tasks": ["rel"]}], "needs num_labels"),
    ([{"name": "sentence_reordering", "data": "english.txt", "max_segments": 4}],
     [{"steps": 1, "tasks": ["sentence_reordering"]}], "max_segments must be 1, 2 or 3"),
])
def test_config_errors(data, tasks, stages, message):
    with pytest.raises(UsageError, match=message):
        MultiTaskConfig(write_config(data, tasks, stages, "bad.json"))


def test_dropping_a_task_warns(data, capsys):
    mt = MultiTaskConfig(write_config(data, TASKS[:2], [
        {"steps": 1, "tasks": ["knowledge_masking"]},
        {"steps": 1, "tasks": ["capitalization"]}], "drop.json"))
    assert mt.total_steps == 2
    assert "stage 2 drops knowledge_masking" in capsys.readouterr().out


def test_the_demo_config_describes_the_people_daily_data(data):
    """config/ernie2_multitask_demo.json, with the data where its paths point."""
    from ernie_testkit import REPO
    d = data
    (d / "config").mkdir(exist_ok=True)
    (d / "data").mkdir(exist_ok=True)
    if not (d / "data" / "people_daily").exists():
        (d / "data" / "people_daily").symlink_to(d / "pd")
    demo = (REPO / "config" / "ernie2_multitask_demo.json").read_text(encoding="utf-8")
    (d / "config" / "demo.json").write_text(demo, encoding="utf-8")
    mt = MultiTaskConfig(str(d / "config" / "demo.json"))
    assert len(mt.tasks) == 6 and [s.steps for s in mt.stages] == [2000, 2000, 4000]
    assert mt.stages[-1].names == list(mt.tasks)
    cfg = ErnieConfig(str(REPO / "config" / "ernie2_small_config.json"))
    assert cfg.use_task_id and max(t.task_id for t in mt.tasks.values()) < \
        cfg["task_type_vocab_size"]


# ----------------------------------------------------------------------------------------------
# killed in the middle of a stage, resumed with --resume auto

RESUME_STAGES = [
    {"steps": 6, "tasks": {"knowledge_masking": 1}},
    {"steps": 18, "tasks": {"knowledge_masking": 1, "capitalization": 1, "sentence_reordering": 1,
                            "token_document_relation": 1, "sentence_distance": 1,
                            "ir_relevance": 1}}]


def resume_command(d, config, checkpoints, *extra):
    """train.py in a process of its own, dropout on, a checkpoint every 4 steps."""
    import sys

    from ernie_testkit import REPO
    return [sys.executable, str(REPO / "train.py")] + flags(
        d, config, "--ernie_config_path", str(d / "ernie_config_dropout.json"),
        "--save_steps", "4", "--checkpoints", str(checkpoints), *extra)


@pytest.mark.slow
def test_killed_in_the_middle_of_a_stage_resumes_bit_exact(data):
    """Killed with SIGKILL in stage 1, then again in the middle of stage 2, and resumed with
    --resume auto: every checkpoint (step_N and stage_S_step_N: parameters, optimizer state,
    train state with the stage, the step in it, the task sampler's state and each task's data
    position) is the uninterrupted run's, bit for bit, with dropout on."""
    import subprocess

    from ernie_testkit import REPO, checkpoint_differences, kill_nine_after_checkpoint
    d = data
    cfg = json.loads((d / "ernie_config.json").read_text())
    (d / "ernie_config_dropout.json").write_text(json.dumps(dict(
        cfg, attention_probs_dropout_prob=0.1, hidden_dropout_prob=0.1)))
    config = write_config(d, TASKS, RESUME_STAGES, "resume.json")

    full = subprocess.run(resume_command(d, config, d / "resume_full"), capture_output=True,
                          text=True, timeout=300, cwd=str(REPO))
    assert full.returncode == 0, full.stderr[-2000:]
    names = sorted(p.name for p in (d / "resume_full").iterdir())
    assert names == sorted(["stage_1_step_6", "stage_2_step_24"] +
                           ["step_%d" % s for s in range(4, 25, 4)])

    checkpoints = d / "resume_killed"
    resume = resume_command(d, config, checkpoints, "--resume", "auto")
    first = kill_nine_after_checkpoint(resume, checkpoints)
    assert first is not None, "the run ended before it could be killed"
    second = kill_nine_after_checkpoint(resume, checkpoints, after=first, at_least=8)
    assert second is not None, "the resumed run ended before it could be killed"
    killed_at = int(second.rsplit("_", 1)[1])
    assert 6 < killed_at < 24            # inside stage 2

    finish = subprocess.run(resume, capture_output=True, text=True, timeout=300,
                            cwd=str(REPO))
    assert finish.returncode == 0, finish.stderr[-2000:]
    out = finish.stdout
    assert re.search(r"^Resuming at step %d \(stage 2, step %d of it\)$"
                     % (killed_at, killed_at - 6), out, re.M), out[-3000:]
    assert "stage 2 continues at step %d (step %d of it)" % (killed_at, killed_at - 6) in out
    assert "stage 1 begins" not in out and "stage 2 begins" not in out

    assert sorted(p.name for p in checkpoints.iterdir()) == names
    for name in names:
        assert checkpoint_differences(d / "resume_full" / name, checkpoints / name) == [], name
    state = json.loads((checkpoints / "step_24" / "train_state.json").read_text())
    position = state["data_position"]
    assert (state["step"], position["stage"], position["stage_step"]) == (24, 2, 18)
    assert sum(position["task_batches"].values()) == 24
    assert all(position["task_batches"][t["name"]] > 0 for t in TASKS)


def test_resume_auto_refuses_another_multitask_config(data):
    """--resume auto over the checkpoints of a run with other stages stops and says so."""
    d = data
    config = write_config(d, TASKS, [{"steps": 2, "tasks": {"knowledge_masking": 1}}],
                          "short.json")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert train.main(flags(d, config, "--save_steps", "2",
                                "--checkpoints", str(d / "short"))) == 0
    other = write_config(d, TASKS, [{"steps": 3, "tasks": {"knowledge_masking": 1}}],
                         "short3.json")
    with pytest.raises(UsageError, match=r"--resume auto: .*step_2 belongs to another run "
                                         r"\(--multitask_config .*short\.json"):
        with contextlib.redirect_stdout(io.StringIO()):
            train.main(flags(d, other, "--checkpoints", str(d / "short"), "--resume", "auto"))


def test_optimizer_state_of_every_head_survives_a_restore(tmp_path):
    """A checkpoint saved before a head's first update, restored, then that head updated first:
    the run goes on (Paddle stopped: "should in state dict"), the state saved meanwhile keeps
    the restored moments of the heads that have not run again, and the run ends as the
    uninterrupted one, bit for bit."""
    import paddle

    def build():
        paddle.seed(1)
        with paddle.utils.unique_name.guard():
            a, b = paddle.nn.Linear(3, 2), paddle.nn.Linear(3, 2)
        opt, lr = make_optimizer(a.parameters() + b.parameters(), 1e-2, 2, 10, 0.01)
        return a, b, FreshGradOptimizer(opt), lr

    def step(layer, opt, lr, seed):
        x = paddle.to_tensor(np.random.RandomState(seed).randn(4, 3).astype("float32"))
        with paddle.utils.unique_name.guard():
            layer(x).square().mean().backward()
            opt.step()
        opt.clear_grad()
        lr.step()

    def state(opt, *layers):
        out = {k: np.asarray(v) for k, v in opt.state_dict().items() if k != "LR_Scheduler"}
        out.update({p.name: p.numpy() for layer in layers for p in layer.parameters()})
        return out

    a, b, opt, lr = build()
    step(a, opt, lr, 0)
    paddle.save(opt.state_dict(), str(tmp_path / "opt.pdopt"))     # the checkpoint
    params = {p.name: p.numpy() for layer in (a, b) for p in layer.parameters()}
    step(b, opt, lr, 1)
    middle = state(opt, a, b)
    step(a, opt, lr, 2)
    want = state(opt, a, b)

    a2, b2, opt2, lr2 = build()                                     # the resumed process
    for p in a2.parameters() + b2.parameters():
        p.set_value(params[p.name])
    opt2.set_state_dict(paddle.load(str(tmp_path / "opt.pdopt")))
    step(b2, opt2, lr2, 1)          # b's first update: its accumulators start fresh
    got = state(opt2, a2, b2)       # a's restored ones are still in it
    assert sorted(got) == sorted(middle)
    assert [k for k in middle if not np.array_equal(middle[k], got[k])] == []
    step(a2, opt2, lr2, 2)
    got = state(opt2, a2, b2)
    assert sorted(got) == sorted(want)
    assert [k for k in want if not np.array_equal(want[k], got[k])] == []


# ----------------------------------------------------------------------------------------------
# continual pretraining: a later config adds a task

def test_continued_run_adds_a_task_with_a_fresh_head(run, data, monkeypatch):
    """The continued run's config adds a task the checkpoint has no head for: the run succeeds,
    the encoder and the old heads start from the checkpoint, the new head from a fresh
    initialisation (the one a run without a checkpoint gets), and it trains."""
    import paddle

    import utils.loop
    d = data
    earlier = d / "ckpt" / "stage_3_step_280"
    new_task = {"name": "discourse_relation", "kind": "sentence_pair",
                "data": "pd/ir_relevance.tsv", "num_labels": 2, "task_id": 6}
    config = write_config(d, TASKS + [new_task], [
        {"steps": 6, "tasks": {"knowledge_masking": 1, "discourse_relation": 2}}], "added.json")
    at_start = {}
    real_loop = utils.loop.train_loop

    def loop(model, *args, **kwargs):
        at_start.update({p.name: p.numpy().copy() for p in model.parameters()})
        return real_loop(model, *args, **kwargs)

    monkeypatch.setattr(utils.loop, "train_loop", loop)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = train.main(flags(d, config, "--checkpoints", str(d / "added"), "--skip_steps", "6",
                              "--init_checkpoint", str(earlier)))
    text = out.getvalue()
    assert rc == 0
    head = ["discourse_relation_fc.b_0", "discourse_relation_fc.w_0"]
    assert re.search(r"Loaded \d+ parameters; missing 2", text) and head[1] in text, text[-3000:]
    assert re.search(r"^stage: 1, step: 6, task: discourse_relation, loss: [\d.]+, acc: [\d.]+, "
                     r"task_steps: [1-6],", text, re.M), text[-3000:]

    saved = read_legacy_dir(str(earlier))
    assert sorted(set(at_start) - set(saved)) == head     # the checkpoint has no such head
    # the encoder and the six earlier heads: the checkpoint's values at step 0
    assert len(saved) > 30
    assert [n for n in saved if not np.array_equal(saved[n], at_start[n])] == []
    # the new head: what the same seed initialises without any checkpoint
    paddle.seed(2)
    fresh = ErnieMultiTask(ErnieConfig(str(d / "ernie_config.json")),
                           MultiTaskConfig(config).tasks)
    fresh = {p.name: p.numpy() for p in fresh.parameters()}
    for name in head:
        assert np.array_equal(at_start[name], fresh[name]), name
    assert not at_start["discourse_relation_fc.b_0"].any()           # zero bias
    assert 0.005 < at_start["discourse_relation_fc.w_0"].std() < 0.03  # TruncatedNormal(0.02)
    # and it trained
    final = read_legacy_dir(str(d / "added" / "step_6"))
    for name in head:
        assert not np.array_equal(final[name], at_start[name]), name
