"""`convert_params --to hf` of a fine-tuned classifier gives a folder that
transformers.pipeline("text-classification") loads, tokenizer and label names included, and
whose probabilities are the toolkit's own (finetune.classifier in eval mode on
reader.task_reader.ClassifyReader batches of the same checkpoint) on Chinese and English
sentences and a sentence pair: same ids from the tokenizer, same numbers from the model."""
import json

import numpy as np
import paddle
import pytest

from finetune.classifier import ErnieClassifier
from model.ernie import ErnieConfig, encoder_feed
from reader.task_reader import ClassifyReader
from tools.convert_params import main as convert
from utils.checkpoint import init_checkpoint, model_params
from utils.format_paddle2019 import write_legacy_dir

transformers = pytest.importorskip("transformers")

TOL = 1e-5
SENTENCES = ["这个手机质量很好", "服务太差了，不推荐！", "还行吧", "The movie was great.",
             "Terrible service, not recommended!", "Café RÉSUMÉ naïve", "unaffable plots",
             "質量 ÖÄÜ ok 😀"]   # unknown characters and words: [UNK]
PAIR = ("这个手机好", "The phone is good.")
LABELS = {"negative": 0, "neutral": 1, "positive": 2}
CONFIGS = {"v1_relu": dict(hidden_act="relu", type_vocab_size=2),
           "v2_task_ids": dict(hidden_act="gelu", sent_type_vocab_size=4,
                               task_type_vocab_size=3, use_task_id=True)}


def write_vocab(path):
    """A 2019 Chinese-layout vocabulary (`token<TAB>id`, lines not in id order): the
    characters of the Chinese sentences, English words and word pieces."""
    words = ["the", "movie", "was", "great", "terrible", "service", "not", "recommend", "##ed",
             "phone", "is", "good", "cafe", "resume", "na", "##ive", "un", "##aff", "##able",
             "plot", "##s", ",", ".", "!", "ok"]
    chars = sorted({c for s in SENTENCES + list(PAIR) for c in s if "\u4e00" <= c <= "\u9fff"
                    or c in "，！"} - {"質"})
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + chars + words
    lines = ["%s\t%d" % (t, i) for i, t in enumerate(tokens)]
    path.write_text("\n".join(lines[::-1]) + "\n", encoding="utf-8")
    return len(tokens)


def classifier_model_dir(d, kind, seed=0):
    """MODEL_PATH-style folder of a fine-tuned classifier: params/ (random weights, the
    classifier head included), vocab.txt, ernie_config.json; and a label map beside."""
    d.mkdir()
    n_tokens = write_vocab(d / "vocab.txt")
    cfg = dict(attention_probs_dropout_prob=0.1, hidden_dropout_prob=0.1, hidden_size=32,
               initializer_range=0.02, max_position_embeddings=64, num_attention_heads=4,
               num_hidden_layers=2, vocab_size=n_tokens + 3, **CONFIGS[kind])
    (d / "ernie_config.json").write_text(json.dumps(cfg))
    rng = np.random.RandomState(seed)
    params = model_params(ErnieClassifier(ErnieConfig(cfg), num_labels=3))
    for name, value in params.items():
        noise = 0.3 * rng.randn(*value.shape)
        params[name] = (noise + (1.0 if name.endswith("_scale") else 0.0)).astype("float32")
    write_legacy_dir(params, str(d / "params"))
    (d / "label_map.json").write_text(json.dumps(LABELS))
    return d


def toolkit_probabilities(model_dir, rows, tmp_path, max_seq_len=64):
    """The toolkit's probabilities [N, 3] and token ids for TSV rows (text_a [, text_b])."""
    tsv = tmp_path / "predict.tsv"
    header = "text_a\ttext_b" if len(rows[0]) == 2 else "text_a"
    tsv.write_text(header + "\n" + "\n".join("\t".join(r) for r in rows) + "\n",
                   encoding="utf-8")
    # for_cn false: the Chinese scripts' true drops spaces, which the HF tokenizer keeps
    reader = ClassifyReader(str(model_dir / "vocab.txt"), max_seq_len=max_seq_len,
                            is_inference=True, for_cn=False)
    cfg = ErnieConfig(str(model_dir / "ernie_config.json"))
    model = ErnieClassifier(cfg, num_labels=3)
    init_checkpoint(model, str(model_dir / "params"), training=False)
    model.eval()
    records = reader.records(str(tsv))
    probs = []
    with paddle.no_grad():
        for r in records:   # one row a batch, as the pipeline runs them
            batch = reader.pad_batch([r])
            probs.append(model.outputs(model(*encoder_feed(cfg, batch))).numpy()[0])
    return np.array(probs), [r.token_ids for r in records], [r.sent_ids for r in records]


def pipeline_probabilities(clf, inputs, **kwargs):
    """[N, 3] probabilities by label id from pipeline outputs (every label, top_k=None)."""
    label2id = clf.model.config.label2id
    out = []
    for scores in clf(inputs, top_k=None, **kwargs):
        row = np.zeros(len(scores))
        for s in scores:
            row[label2id[s["label"]]] = s["score"]
        out.append(row)
    return np.array(out)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_pipeline_gives_the_toolkit_probabilities(kind, tmp_path, capsys):
    model_dir = classifier_model_dir(tmp_path / "model", kind)
    hf_dir = tmp_path / "hf"
    assert convert([str(model_dir), str(hf_dir), "--to", "hf", "--label_map_config",
                    str(model_dir / "label_map.json")]) == 0
    assert "ErnieForSequenceClassification and its tokenizer" in capsys.readouterr().out
    hf_cfg = json.loads((hf_dir / "config.json").read_text())
    assert hf_cfg["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert hf_cfg["label2id"] == LABELS

    clf = transformers.pipeline("text-classification", model=str(hf_dir), device="cpu")
    assert clf.tokenizer.model_max_length == 64

    ours, ids, _ = toolkit_probabilities(model_dir, [(s,) for s in SENTENCES], tmp_path)
    assert [clf.tokenizer(s)["input_ids"] for s in SENTENCES] == ids
    theirs = pipeline_probabilities(clf, SENTENCES)
    assert np.abs(ours - theirs).max() <= TOL
    # the labels are not all alike, or the comparison would say little
    assert len({int(p.argmax()) for p in ours}) > 1 or np.ptp(ours[:, 0]) > 1e-3
    assert [r["label"] for r in clf(SENTENCES)] == \
        [{v: k for k, v in LABELS.items()}[int(p.argmax())] for p in ours]

    pair_ours, pair_ids, pair_types = toolkit_probabilities(model_dir, [PAIR], tmp_path)
    enc = clf.tokenizer(*PAIR)
    assert [enc["input_ids"]] == pair_ids and [enc["token_type_ids"]] == pair_types
    pair_theirs = pipeline_probabilities(clf, [{"text": PAIR[0], "text_pair": PAIR[1]}])
    assert np.abs(pair_ours - pair_theirs).max() <= TOL

    # inputs longer than the toolkit's max_seq_len: the pipeline cuts them as told
    long_inputs = ["".join(SENTENCES[:3]) * 2, SENTENCES[3] * 4]
    cut_ours, cut_ids, _ = toolkit_probabilities(model_dir, [(s,) for s in long_inputs],
                                                 tmp_path, max_seq_len=16)
    assert all(len(i) == 16 for i in cut_ids)
    cut_theirs = pipeline_probabilities(clf, long_inputs, truncation=True, max_length=16)
    assert np.abs(cut_ours - cut_theirs).max() <= TOL


@pytest.mark.slow
def test_pipeline_of_a_trained_step_checkpoint_matches_predict_classifier(tmp_path, capsys):
    """A step_N that run_classifier.py wrote (no vocab or config in it: --vocab_path and
    --ernie_config_path), against the probabilities predict_classifier.py writes for it."""
    from ernie_testkit import run_entry
    model_dir = classifier_model_dir(tmp_path / "model", "v2_task_ids", seed=1)
    names = sorted(LABELS)
    train = tmp_path / "train.tsv"
    train.write_text("label\ttext_a\n" + "".join("%s\t%s\n" % (names[i % 3], s)
                                                 for i, s in enumerate(SENTENCES * 2)),
                     encoding="utf-8")
    predict = tmp_path / "predict.tsv"
    predict.write_text("text_a\n" + "\n".join(SENTENCES) + "\n", encoding="utf-8")
    common = ["--use_cuda", "false", "--vocab_path", model_dir / "vocab.txt",
              "--ernie_config_path", model_dir / "ernie_config.json", "--max_seq_len", "64",
              "--label_map_config", model_dir / "label_map.json", "--num_labels", "3",
              "--for_cn", "false"]
    code, out, err = run_entry("run_classifier", common + [
        "--do_train", "true", "--do_val", "false", "--do_test", "false", "--train_set", train,
        "--batch_size", "4", "--epoch", "1", "--learning_rate", "1e-3", "--save_steps", "4",
        "--init_pretraining_params", model_dir / "params", "--checkpoints",
        tmp_path / "checkpoints"], tmp_path)
    assert code == 0, err[-3000:]
    step = tmp_path / "checkpoints" / "step_4"
    assert step.is_dir(), sorted(p.name for p in (tmp_path / "checkpoints").iterdir())

    code, out, err = run_entry("predict_classifier", common + [
        "--init_checkpoint", step, "--predict_set", predict, "--output_file",
        tmp_path / "pred.tsv", "--save_inference_model_path", tmp_path / "inference"],
        tmp_path)
    assert code == 0, err[-3000:]
    rows = [line.split("\t") for line in (tmp_path / "pred.tsv").read_text().splitlines()]
    ours = np.array([[float(x) for x in r[:3]] for r in rows])

    hf_dir = tmp_path / "hf"
    assert convert([str(step), str(hf_dir), "--to", "hf", "--vocab_path",
                    str(model_dir / "vocab.txt"), "--ernie_config_path",
                    str(model_dir / "ernie_config.json"), "--label_map_config",
                    str(model_dir / "label_map.json")]) == 0
    clf = transformers.pipeline("text-classification", model=str(hf_dir), device="cpu")
    theirs = pipeline_probabilities(clf, SENTENCES)
    assert np.abs(ours - theirs).max() <= TOL
    assert [r["label"] for r in clf(SENTENCES)] == [r[3] for r in rows]
