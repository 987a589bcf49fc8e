"""tools/prepare_data.py mrc: the People's Daily extractive QA set (SQuAD v1.1 format)."""
import json

import pytest

from tools import prepare_data as pd
from utils.errors import UsageError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("qa")
    stats = pd.build_mrc(str(out), seed=1, max_lines=600, verbose=False)
    sets = {n: json.loads((out / "pd_qa" / ("%s.json" % n)).read_text(encoding="utf-8"))
            for n in pd.SPLITS}
    return out, stats, sets


def questions(data):
    return [(p["context"], q) for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]


def test_squad_format_and_answers(built):
    _, stats, sets = built
    ids, contexts = set(), {}
    for name, data in sets.items():
        assert data["version"] == "1.1"
        qs = questions(data)
        assert len(qs) == stats[name]["questions"] > 0
        for context, q in qs:
            assert q["id"] not in ids
            ids.add(q["id"])
            (ans,) = q["answers"]                         # exactly one: trainable as is
            start = ans["answer_start"]
            assert context[start:start + len(ans["text"])] == ans["text"]
            assert q["question"].endswith("？") and ans["text"] not in q["question"]
            assert len(context) <= pd.QA_MAX_CHARS
            assert len(context) - len(ans["text"]) >= pd.QA_MIN_EXTRA_CHARS
            contexts.setdefault(context, set()).add(name)
    assert all(len(s) == 1 for s in contexts.values())  # no context in two splits
    n = sum(stats[s]["contexts"] for s in pd.SPLITS)
    assert pd.split_sizes(n) == tuple(stats[s]["contexts"] for s in pd.SPLITS)


def cue_next_to_answer(context, question, answer):
    """Does the question quote (through one of the cue forms) words that occur once in the
    context, right before or right after the answer?"""
    a, b = answer["answer_start"], answer["answer_start"] + len(answer["text"])
    for table in (pd.QA_LEFT, pd.QA_RIGHT):
        for forms in table.values():
            for form in forms.values():
                head, tail = form.split("{c}")
                if not (question.startswith(head) and question.endswith(tail)):
                    continue
                cue = question[len(head):len(question) - len(tail)]
                if cue and context.count(cue) == 1 and (
                        context[b:b + len(cue)] == cue or context[a - len(cue):a] == cue):
                    return True
    return False


def test_questions_are_answerable_and_varied(built):
    _, _, sets = built
    qs = questions(sets["train"])
    generic = {q for t in pd.QA_GENERIC.values() for q in t}
    n_generic = sum(q["question"] in generic for _, q in qs)
    assert 0.2 < n_generic / len(qs) < 0.7                 # both kinds are common
    assert len({q["question"] for _, q in qs}) > len(qs) / 2
    for context, q in qs:
        if q["question"] not in generic:
            assert cue_next_to_answer(context, q["question"], q["answers"][0]), (q, context)


def test_rerun_is_identical_and_seed_changes_split(built, tmp_path):
    out, _, _ = built
    pd.build_mrc(str(tmp_path / "b"), seed=1, max_lines=600, verbose=False)
    pd.build_mrc(str(tmp_path / "c"), seed=2, max_lines=600, verbose=False)
    for name in pd.SPLITS:
        first = (out / "pd_qa" / ("%s.json" % name)).read_bytes()
        assert (tmp_path / "b" / "pd_qa" / ("%s.json" % name)).read_bytes() == first
        assert (tmp_path / "c" / "pd_qa" / ("%s.json" % name)).read_bytes() != first
    assert not list((tmp_path / "b" / "pd_qa").glob("*.tmp"))


def test_cli_subcommand(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(pd, "build_mrc", lambda out, seed: calls.append((out, seed)))
    assert pd.main(["mrc", "--output_dir", str(tmp_path), "--seed", "3"]) == 0
    assert calls == [(str(tmp_path), 3)]
    with pytest.raises(UsageError):
        pd.main(["qa", "--output_dir", str(tmp_path)])
