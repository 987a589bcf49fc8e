"""ErnieConfig reads the 1.0 and 2.0 json layouts and names the key and file it rejects."""
import json

import pytest

from ernie_testkit import file_2019
from model.ernie import ErnieConfig
from utils.errors import DataError


def test_reads_the_2019_1_0_config():
    v1 = ErnieConfig(file_2019("config/ernie_config.json"))
    assert v1.sent_types == 2 and not v1.use_task_id and v1["hidden_act"] == "relu"
    assert v1["max_position_embeddings"] == 513 and v1["vocab_size"] == 18000


def test_reads_the_2019_2_0_config():
    v2 = ErnieConfig(file_2019("config/ernie_2.0_base_en_config.json"))   # not shipped
    assert v2.sent_types == 4 and not v2.use_task_id and v2["task_type_vocab_size"] == 16
    assert v2["use_task_id"] is None  # optional keys read as None, as model/ernie.py did


def write(tmp_path, data, name="ernie_config.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def valid():
    return dict(attention_probs_dropout_prob=0.1, hidden_act="gelu", hidden_dropout_prob=0.1,
                hidden_size=64, initializer_range=0.02, max_position_embeddings=32,
                num_attention_heads=4, num_hidden_layers=2, type_vocab_size=2, vocab_size=50)


@pytest.mark.parametrize("key", sorted(valid()))
def test_missing_key_names_key_and_file(tmp_path, key):
    data = valid()
    del data[key]
    path = write(tmp_path, data)
    with pytest.raises(DataError) as err:
        ErnieConfig(path)
    assert str(path) in str(err.value) and key in str(err.value)


@pytest.mark.parametrize("text,needle", [
    ("{not json", "parsing"), ("[1, 2]", "parsing"), ("", "parsing")])
def test_corrupt_file(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=needle) as err:
        ErnieConfig(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("change,needle", [
    (dict(hidden_size=30), "divisible"), (dict(hidden_act="tanh"), "hidden_act"),
    (dict(num_hidden_layers="2"), "num_hidden_layers"),
    (dict(use_task_id=True), "task_type_vocab_size")])
def test_bad_values(tmp_path, change, needle):
    data = valid()
    data.update(change)
    with pytest.raises(DataError, match=needle):
        ErnieConfig(write(tmp_path, data))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        ErnieConfig(tmp_path / "nope.json")
