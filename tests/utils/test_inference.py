"""utils.inference.Predictor: in fp32 on CPU, batches of fewer than rows_for_onednn(threads)
rows run on a second predictor without oneDNN, made only when such a batch comes, and give what
oneDNN gives up to float rounding; bf16 never makes one (its kernels are oneDNN's)."""
import numpy as np
import pytest

from ernie_testkit import tiny_classify_folder
from utils import inference

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import serving.api
    folder, texts = tiny_classify_folder(tmp_path_factory.mktemp("inference"))
    model = serving.api.load(str(folder), num_threads=1, predictor=False)
    prefix = str(folder / model.manifest["programs"]["task"])
    records = [model.reader.build_record({"text_a": t}, "<input>", i)
               for i, t in enumerate(texts[:40])]
    return prefix, model.reader.pad_batch(records)


def test_few_rows_run_without_onednn_and_agree_with_it(tiny):
    prefix, forty = tiny
    few = inference.Predictor(prefix, num_threads=1)
    many = inference.rows_for_onednn(1)
    batch = {k: v[:many] for k, v in forty.items()}
    full = few.run(batch)[0]
    assert few._few_rows is None  # a batch of that many rows runs on oneDNN
    for rows in (1, 3, many - 1):
        part = few.run({k: v[:rows] for k, v in batch.items()})[0]
        np.testing.assert_allclose(part, full[:rows], atol=1e-5)
    assert few._few_rows is not None

    onednn = inference.Predictor(prefix, num_threads=1, onednn_min_rows=1)
    for rows in (1, 3):
        np.testing.assert_allclose(few.run({k: v[:rows] for k, v in batch.items()})[0],
                                   onednn.run({k: v[:rows] for k, v in batch.items()})[0],
                                   atol=1e-5)
    assert onednn._few_rows is None


def test_without_onednn_or_in_bf16_there_is_one_predictor(tiny):
    prefix, forty = tiny
    batch = {k: v[:2] for k, v in forty.items()}
    for predictor in (inference.Predictor(prefix, num_threads=1, use_mkldnn=False),
                      inference.Predictor(prefix, num_threads=1, precision="bf16")):
        predictor.run(batch)
        assert predictor._few_rows is None


def test_more_threads_move_batches_to_onednn_sooner():
    assert [inference.rows_for_onednn(t) for t in (1, 2, 4, 8, 64)] == [16, 8, 4, 2, 2]


def test_the_first_run_leaves_the_garbage_setting_as_it_was(tiny):
    """The executor's garbage is collected in batches (read when a predictor first runs);
    the process' own setting is what it was, before and after."""
    import paddle
    prefix, forty = tiny
    name = "FLAGS_eager_delete_tensor_gb"
    before = paddle.get_flags([name])[name]
    predictor = inference.Predictor(prefix, num_threads=1)
    predictor.run({k: v[:2] for k, v in forty.items()})
    predictor.run({k: v[:2] for k, v in forty.items()})
    assert paddle.get_flags([name])[name] == before
