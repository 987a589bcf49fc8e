"""Fixtures of the data-parallel tests."""
import pytest

from ernie_testkit import write_data_parallel_setup


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """64 real reviews and a tiny dropout-free model with random weights (ernie_testkit)."""
    return write_data_parallel_setup(tmp_path_factory.mktemp("dp"))
