"""The toolkit's layers import only downward, and no modules import each other in a circle:

    utils  <-  tokenization  <-  reader  <-  model  <-  finetune, pretraining  <-  serving
           <-  entry points

`utils` imports no other project package; finetune and pretraining do not import each other;
serving (the model folder, the Python API, the HTTP server) imports finetune but not pretraining;
the entry points (run_*.py, train.py, predict_*.py, ernie_encoder.py) import no other entry
point; the offline tools (tools/) and benchmarks may import anything, and nothing imports them.
Every import counts, also one inside a function."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = {"utils": 0, "tokenization": 1, "reader": 2, "model": 3, "finetune": 4,
          "pretraining": 4, "serving": 4.5}
ENTRY_POINTS = ("run_classifier", "run_sequence_labeling", "run_mrc", "train",
                "predict_classifier", "predict_sequence_labeling", "ernie_encoder")
OUTSIDE = {"tools": 6, "benchmarks": 6}


def rank(top):
    if top in LAYERS:
        return LAYERS[top]
    if top in ENTRY_POINTS:
        return 5
    return OUTSIDE.get(top)


def project_modules():
    """{dotted module name: path} of every non-test Python file of the project."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "script") or rel.parts[0].startswith("."):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(path, modules):
    """The project modules `path` imports (`from pkg import mod` counts as pkg.mod)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + ["%s.%s" % (node.module, a.name) for a in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_graph():
    modules = project_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def layer_violations(graph):
    bad = []
    for importer, imported in graph.items():
        src = importer.split(".")[0]
        for target in sorted(imported):
            dst = target.split(".")[0]
            if src == dst:
                continue
            if rank(dst) is None or rank(dst) >= 5:
                bad.append("%s imports %s: nothing imports an entry point, tool or benchmark"
                           % (importer, target))
            elif rank(src) is None:
                bad.append("%s (outside every layer) imports %s" % (importer, target))
            elif src == "serving" and dst == "pretraining":
                bad.append("%s imports %s: serving imports finetune, not pretraining"
                           % (importer, target))
            elif rank(src) <= rank(dst):
                bad.append("%s (layer %g) imports %s (layer %g)"
                           % (importer, rank(src), target, rank(dst)))
    return bad


def cycles(graph):
    """One list per import cycle found (depth-first search over the module graph)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_every_import_runs_down_a_layer():
    assert layer_violations(import_graph()) == []


def test_no_modules_import_each_other_in_a_circle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("graph, complaint", [
    ({"utils.fileio": {"reader.batching"}, "reader.batching": set()}, "layer 0"),
    ({"finetune.runner": {"pretraining.loop"}, "pretraining.loop": set()}, "layer 4"),
    ({"finetune.predict": {"serving.folder"}, "serving.folder": set()}, "layer 4.5"),
    ({"serving.api": {"pretraining.masked_lm"}, "pretraining.masked_lm": set()}, "pretraining"),
    ({"model.ernie": {"tools.convert_params"}, "tools.convert_params": set()}, "nothing imports"),
    ({"run_mrc": {"train"}, "train": set()}, "nothing imports"),
])
def test_the_checks_catch_an_upward_import(graph, complaint):
    assert complaint in " ".join(layer_violations(graph))


def test_the_checks_catch_a_cycle():
    graph = {"model.a": {"model.b"}, "model.b": {"model.c"}, "model.c": {"model.a"}}
    assert cycles(graph) == [["model.a", "model.b", "model.c", "model.a"]]
