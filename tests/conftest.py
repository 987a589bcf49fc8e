"""Set-up shared by every test: Paddle's logging quietened before Paddle loads. Shared helpers
and constants (the repository, the 2019 files: ernie_testkit.file_2019) are in ernie_testkit."""
import warnings

from utils import paddle_env

paddle_env.apply()  # the entry points' settings, before Paddle loads

warnings.filterwarnings("ignore", message="No ccache found")
