"""Shared test fixtures: where the 2019 files live (../shared/ernie2019 beside the checkout)."""
import warnings

import pytest

import utils  # noqa: F401  (quiet Paddle logging, set before Paddle loads)
from ernie_testkit import ERNIE2019, REPO  # noqa: F401

warnings.filterwarnings("ignore", message="No ccache found")


@pytest.fixture
def ernie2019():
    """The 2019 vocabularies, configs and demo data; skip where they are not beside the repo."""
    if not (ERNIE2019 / "config" / "ernie_config.json").exists():
        pytest.skip("the 2019 files are not at %s (set ERNIE2019_DIR)" % ERNIE2019)
    return ERNIE2019
