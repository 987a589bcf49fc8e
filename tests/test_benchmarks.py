"""Smoke test of the benchmarks' ONNX Runtime peer on a tiny model (no timings): the ONNX file
exported from the HF conversion of our weights gives our encoder's outputs, and the peers' job
script (benchmarks/entry_points.py --job) writes what ernie_encoder.py writes."""
import os
from types import SimpleNamespace

import numpy as np
import pytest

from ernie_testkit import REPO

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")


def test_onnx_peer_matches_our_encoder(tmp_path):
    from benchmarks import entry_points, speed
    from finetune.classifier import ErnieClassifier
    from model.ernie import ErnieConfig
    from reader.task_reader import ExtractEmbeddingReader
    from utils.checkpoint import model_params, save_params

    assert "cores" in speed.cpu_line()
    config = ErnieConfig(dict(attention_probs_dropout_prob=0.1, hidden_act="relu",
                              hidden_dropout_prob=0.1, initializer_range=0.02,
                              max_position_embeddings=64, type_vocab_size=2, vocab_size=18000,
                              hidden_size=32, num_hidden_layers=2, num_attention_heads=2),
                         source="tiny")
    model = ErnieClassifier(config, 2)
    model.eval()
    save_params(model_params(model), str(tmp_path / "hf"), "hf", ernie_config=config,
                head="cls")
    data = tmp_path / "input.tsv"
    data.write_text("text_a\n这家酒店很好\n房间太小了，不过早餐还可以\n好\n服务一般\n",
                    encoding="utf-8")
    vocab = os.path.join(str(REPO), "config", "vocab.txt")
    reader = ExtractEmbeddingReader(vocab, max_seq_len=16)
    batch = reader.pad_batch(reader.records(str(data)))  # padded: lengths differ
    speed.export_onnx(str(tmp_path / "hf"), str(tmp_path / "onnx"), batch)

    entry_points.job(SimpleNamespace(
        job="encode", runtime="ort_fp32", model_dir=str(tmp_path), vocab_path=vocab,
        data_set=str(data), max_seq_len=16, batch_size=2, threads=1,
        output=str(tmp_path / "out")))
    import paddle
    seq_out, pooled = model.ernie(*[paddle.to_tensor(batch[n]) for n in entry_points.ONNX_INPUTS])
    lens = np.load(str(tmp_path / "out" / "seq_lens.npy"))
    assert lens.tolist() == batch["seq_lens"].tolist()
    np.testing.assert_allclose(np.load(str(tmp_path / "out" / "cls_emb.npy")), pooled.numpy(),
                               atol=1e-4)
    tokens = np.load(str(tmp_path / "out" / "top_layer_emb.npy"))
    ours = np.concatenate([seq_out.numpy()[i, :n] for i, n in enumerate(lens)])
    np.testing.assert_allclose(tokens, ours, atol=1e-4)
