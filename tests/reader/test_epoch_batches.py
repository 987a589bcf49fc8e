"""batching.epoch_batches, the epoch loop of every reader: passes cut or streamed, batches
dealt to trainers, and a saved position from which a new reader continues exactly where the
first one was."""
import gzip
import json

import numpy as np
import pytest

from ernie_testkit import file_2019
from reader import batching
from reader.documents import DocumentTaskReader
from reader.pretraining import ErnieDataReader
from tokenization import FullTokenizer


def run(cut_epochs, num_epochs=3, start=None, trainer_id=0, num_trainers=1, seed=5):
    rng = np.random.RandomState(seed)

    def items(epoch):
        return [(epoch, int(i)) for i in rng.permutation(7)]

    out = []
    for batch, position, examples in batching.epoch_batches(
            items, num_epochs, 3, length=len, trainer_id=trainer_id,
            num_trainers=num_trainers, rng=rng, start=start, cut_epochs=cut_epochs):
        out.append((batch, json.loads(json.dumps(position)), examples))
    return out


def test_cut_passes_end_with_a_short_batch_and_deal_complete_runs():
    out = run(True)
    assert [len(b) for b, _, _ in out] == [3, 3, 1] * 3
    assert [p["epoch"] for _, p, _ in out] == [0] * 3 + [1] * 3 + [2] * 3
    assert [p["batch"] for _, p, _ in out] == [1, 2, 3] * 3
    assert [n for _, _, n in out] == [3, 6, 7] * 3
    # two trainers: the pass's third batch has no partner and is dropped
    t0, t1 = run(True, num_trainers=2), run(True, trainer_id=1, num_trainers=2)
    assert [b for b, _, _ in t0] == [b for b, _, _ in out[0::3]]
    assert [b for b, _, _ in t1] == [b for b, _, _ in out[1::3]]
    assert [p["batch"] for _, p, _ in t1] == [1] * 3 and [n for _, _, n in t1] == [6] * 3


def test_a_stream_runs_batches_across_passes():
    out = run(False)
    assert [len(b) for b, _, _ in out] == [3] * 7
    assert [item for b, _, _ in out for item in b] == \
        [item for b, _, _ in run(True) for item in b]
    assert [p["batches"] for _, p, _ in out] == list(range(1, 8))
    assert out[-1][2] == 21


@pytest.mark.parametrize("cut_epochs", [True, False])
@pytest.mark.parametrize("trainer_id,num_trainers", [(0, 1), (1, 2)])
def test_resuming_at_every_position_gives_the_rest_of_the_run(cut_epochs, trainer_id,
                                                              num_trainers):
    full = run(cut_epochs, trainer_id=trainer_id, num_trainers=num_trainers)
    for k, (_, position, _) in enumerate(full):
        # another seed: a cut pass is drawn again from its saved rng state
        rest = run(cut_epochs, start=position, trainer_id=trainer_id,
                   num_trainers=num_trainers, seed=5 if not cut_epochs else 9)
        assert rest == full[k + 1:]


def test_endless_passes():
    out = []
    for batch, position, _ in batching.epoch_batches(lambda e: [e] * 2, None, 3,
                                                     length=lambda item: 1, cut_epochs=False):
        out.append((batch, position["epoch"]))
        if len(out) == 4:
            break
    assert out == [([0, 0, 1], 1), ([1, 2, 2], 3), ([3, 3, 4], 4), ([4, 5, 5], 6)]


@pytest.fixture(scope="module")
def pretraining_list(tmp_path_factory):
    d = tmp_path_factory.mktemp("pretraining")
    with gzip.open(file_2019("data/demo_train_set.gz"), "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(240)]
    names = []
    for k in range(2):
        names.append(str(d / ("part-%d.gz" % k)))
        with gzip.open(names[-1], "wt", encoding="utf-8") as f:
            f.write("".join(lines[k * 120:(k + 1) * 120]))
    (d / "list").write_text("%s\t0.5\n%s\t1.1\n" % tuple(names), encoding="utf-8")
    return str(d / "list")


@pytest.mark.parametrize("num_trainers", [1, 2])
def test_pretraining_reader_resumes_from_its_position(pretraining_list, num_trainers):
    def reader():
        return ErnieDataReader(pretraining_list, file_2019("config/vocab.txt"),
                               batch_size=3000, epoch=2, random_seed=3, trainer_id=0,
                               num_trainers=num_trainers, verbose=False)

    def fingerprint(batch):
        return {k: v.tolist() for k, v in batch.items()}

    first = reader()
    full, positions = [], []
    for batch in first.data_generator()():
        full.append(fingerprint(batch))
        positions.append(first.position)
    assert len(full) > 4 and positions[-1]["epoch"] == 1
    for k in (0, len(full) // 2, len(full) - 2):
        rest = [fingerprint(b) for b in reader().data_generator(start=positions[k])()]
        assert rest == full[k + 1:]


def test_document_reader_resumes_from_its_position(tmp_path):
    vocab = file_2019("config/vocab.txt")
    docs = tmp_path / "docs.txt"
    docs.write_text("中国的首都是北京。上海在东边！广州呢？\n天气很好。我们去公园。\n"
                    "他说：“好。”然后走了。\n", encoding="utf-8")

    def reader():
        return DocumentTaskReader("sentence_distance", str(docs), FullTokenizer(vocab),
                                  max_seq_len=32, batch_size=3, in_tokens=False,
                                  random_seed=4)

    first = reader()
    full, positions = [], []
    for batch in first.data_generator()():
        full.append(batch["src_ids"].tolist())
        positions.append(first.position)
        if len(full) == 8:
            break
    rest = reader().data_generator(start=positions[3])()
    assert [next(rest)["src_ids"].tolist() for _ in range(4)] == full[4:]
