"""Set-up shared by every test: Paddle's logging quietened before Paddle loads. Shared helpers
and constants (the repository, the 2019 files: ernie_testkit.file_2019) are in ernie_testkit."""
import warnings

import utils  # noqa: F401  (quiet Paddle logging, set before Paddle loads)

warnings.filterwarnings("ignore", message="No ccache found")
