"""Every third-party package the toolkit imports is named in requirements.txt (and every one
the tests and benchmarks import in requirements-test.txt), so that a new virtual environment
built from those files alone runs everything. Imports are read from the source (inside
functions too), so a lazily imported package is not missed."""
import ast
import functools
import importlib.metadata
import re
import sys

import pytest

from ernie_testkit import REPO

# folders whose modules are not part of the toolkit a user runs
TEST_ONLY = ("tests", "benchmarks")


def python_files():
    skip = {".git", ".venv", "__pycache__"}
    for path in sorted(REPO.rglob("*.py")):
        parts = path.relative_to(REPO).parts
        if not skip.intersection(parts) and not any(p.startswith(".") for p in parts):
            yield path


def own_modules():
    """Top-level names that resolve to files of this repository (and of tests/, where test
    modules import each other by name)."""
    names = set()
    for base in (REPO, REPO / "tests", *sorted((REPO / "tests").glob("*/"))):
        names |= {p.stem for p in base.glob("*.py")}
        names |= {p.name for p in base.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    return names


def _catches_import_error(try_node):
    names = set()
    for handler in try_node.handlers:
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {t.id for t in types if isinstance(t, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def imported_top_levels(path):
    """(top-level name, line, optional) of every import in `path`; optional ones sit in the
    body of a `try` that catches ImportError (the code works without them)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and _catches_import_error(node):
            optional |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno, id(node) in optional
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno, id(node) in optional


def third_party_imports(paths, optional=False):
    """{top-level import name: [file:line, ...]} of the imports that are neither the standard
    library nor this repository: the required ones, or with `optional` those the code can do
    without."""
    own = own_modules()
    found = {}
    for path in paths:
        for name, line, is_optional in imported_top_levels(path):
            if name in sys.stdlib_module_names or name in own or name == "__future__" \
                    or is_optional != optional:
                continue
            found.setdefault(name, []).append("%s:%d" % (path.relative_to(REPO), line))
    return found


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def required_distributions(path):
    """Distribution names of a requirements file, following `-r other.txt`."""
    names = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("-r"):
            names |= required_distributions(path.parent / line[2:].strip())
            continue
        names.add(normalize(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0]))
    return names


@functools.lru_cache(maxsize=None)
def provided_by():
    """{import name: [distribution, ...]} of this environment (slow to build: cached)."""
    return importlib.metadata.packages_distributions()


def missing_requirements(imports, requirements, provides):
    """The imports that no required distribution provides: {name: [where]}."""
    missing = {}
    for name, where in sorted(imports.items()):
        if not {normalize(d) for d in provides.get(name, ())} & requirements:
            missing[name] = where
    return missing


def toolkit_files():
    return [p for p in python_files() if p.relative_to(REPO).parts[0] not in TEST_ONLY]


def test_every_runtime_import_is_in_requirements_txt():
    imports = third_party_imports(toolkit_files())
    assert {"paddle", "numpy", "scipy", "matplotlib"} <= set(imports)  # the walk sees them
    missing = missing_requirements(imports, required_distributions(REPO / "requirements.txt"),
                                   provided_by())
    assert not missing, "imported but not in requirements.txt: %s" % missing


def test_every_test_benchmark_and_optional_import_is_in_requirements_test_txt():
    """Tests and benchmarks run in the test environment, and so do the toolkit's optional
    imports (torch for pytorch_model.bin, scikit-learn for the demo's baseline row, nltk's
    tokenizer), so that the paths that use them are tested."""
    test_files = [p for p in python_files() if p.relative_to(REPO).parts[0] in TEST_ONLY]
    imports = third_party_imports(test_files)
    for optional in (False, True):
        for name, where in third_party_imports(toolkit_files(), optional).items():
            imports.setdefault(name, []).extend(where)
    assert {"torch", "sklearn", "nltk"} <= set(imports)
    missing = missing_requirements(imports,
                                   required_distributions(REPO / "requirements-test.txt"),
                                   provided_by())
    assert not missing, "imported but not in requirements-test.txt: %s" % missing


@pytest.mark.parametrize("dropped", ["scipy", "paddlepaddle", "matplotlib"])
def test_a_requirement_taken_out_is_reported_with_where_it_is_imported(dropped):
    imports = third_party_imports(toolkit_files())
    requirements = required_distributions(REPO / "requirements.txt") - {dropped}
    missing = missing_requirements(imports, requirements,
                                   provided_by())
    assert missing and all(normalize(d) == dropped for name in missing
                           for d in provided_by()[name])
    assert all(re.fullmatch(r".+\.py:\d+", w) for where in missing.values() for w in where)
