"""The 2019 release files that config/ and data/ ship (ernie_testkit.SHIPPED_2019, which the
tests read instead of ERNIE2019's) are there, with their licence, and are byte for byte the
release's copies where ERNIE2019 is present to compare with."""
import filecmp

import pytest

from ernie_testkit import ERNIE2019, REPO, SHIPPED_2019


@pytest.mark.parametrize("relpath", SHIPPED_2019)
def test_the_shipped_file_is_the_release_copy(relpath):
    shipped = REPO / relpath
    assert shipped.is_file() and shipped.stat().st_size > 0, shipped
    assert (REPO / "config" / "LICENSE.ernie2019").is_file()
    original = ERNIE2019 / relpath
    if not original.is_file():
        pytest.skip("no 2019 copy at %s to compare with (set ERNIE2019_DIR)" % original)
    assert filecmp.cmp(shipped, original, shallow=False), (shipped, original)
