"""Fixtures of the script tests."""
import pytest

from ernie_testkit import write_english_model


@pytest.fixture(scope="module")
def english_model(tmp_path_factory):
    """A tiny English MODEL_PATH for the GLUE task scripts (ernie_testkit.write_english_model)."""
    return write_english_model(tmp_path_factory.mktemp("model_en"))
