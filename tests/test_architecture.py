"""The import rules of docs/architecture.md, checked on the source: every `import` in src/camlytics, at
module level or inside a function, parsed with `ast` (nothing is imported to check it)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "camlytics"

EDGE = {"edge"}  # floor 0: MicroPython-safe, imports nothing of camlytics outside itself
GROUND = {"camlytics", "errors", "constants", "frames", "validate", "urls", "camera_http", "metricsfile", "store"}
MODEL = {"model"}
STAGES = {"sources", "sampling", "annotate", "train", "export", "runtime", "deploy", "sim", "firmware"}
TOP = {"cli", "demo", "fleet", "__main__"}
# The sideways imports between stages that the data flow asks for (docs/architecture.md); no others.
STAGE_EDGES = {
    "sampling": {"sources"},  # collect reads frames from a source
    "sources": {"sim"},  # the sim: source renders the simulated scene
    "train": {"sources", "sim"},  # evaluate reads any source; simdata labels simulated frames
    "runtime": {"export", "firmware"},  # runs what they build: the C runtime, the MicroPython firmware
    "deploy": {"export", "firmware"},  # packs what they build into the ACAP
    "sim": {"deploy", "runtime", "firmware"},  # runs uploaded apps: checks them as deploy does (package, ELF
    # architecture), starts MicroPython as runtime does, ARM firmware under the qemu-user that firmware names
}


def unit(module: str) -> str:
    """The top-level unit of a dotted module name: a package (camlytics.train.fit -> train) or a ground module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "camlytics"


def allowed(src: str) -> set[str]:
    """The units that unit `src` may import (besides itself)."""
    if src in EDGE:
        return set()
    if src in GROUND:
        return EDGE | GROUND
    if src in MODEL:
        return EDGE | GROUND
    if src in STAGES:
        return EDGE | GROUND | MODEL | STAGE_EDGES.get(src, set())
    assert src in TOP, f"{src} is on no floor of docs/architecture.md: add it to one"
    return EDGE | GROUND | MODEL | STAGES | TOP


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, module, inside a function) of every camlytics module `path` imports, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, in_function) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:  # `from camlytics import validate` imports the module camlytics.validate
                sub = f"{base}.{a.name}"
                found.append((node.lineno, sub if is_module(sub) else base, in_function))
        for child in ast.iter_child_nodes(node):
            visit(child, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return [(line, name, fn) for line, name, fn in found if name == "camlytics" or name.startswith("camlytics.")]


def import_graph() -> dict[str, list[tuple[str, int, str, bool]]]:
    """{module: [(file, line, imported module, inside a function)]} for every module of src/camlytics."""
    graph = {}
    for path in sorted(ROOT.rglob("*.py")):
        file = str(path.relative_to(SRC.parent))
        graph[module_name(path)] = [(file, line, name, fn) for line, name, fn in imports(path)]
    return graph


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


GRAPH = import_graph()


def test_every_unit_is_on_a_floor():
    units = {unit(m) for m in GRAPH}
    assert units <= EDGE | GROUND | MODEL | STAGES | TOP, f"not on any floor: {units - EDGE - GROUND - MODEL - STAGES - TOP}"


def test_imports_go_down_or_along_the_data_flow():
    wrong = []
    for module, found in GRAPH.items():
        src = unit(module)
        for file, line, name, _ in found:
            dst = unit(name)
            if dst != src and dst not in allowed(src):
                wrong.append(f"{file}:{line}: {src} imports {name} ({src} may import {sorted(allowed(src)) or 'nothing'})")
    assert not wrong, "imports that break docs/architecture.md:\n" + "\n".join(wrong)


def test_edge_imports_nothing_of_camlytics_outside_edge():
    outside = [f"{file}:{line}: {name}" for module, found in GRAPH.items() if unit(module) == "edge"
               for file, line, name, _ in found if unit(name) != "edge"]
    assert not outside


def test_no_cycle_between_top_level_packages():
    edges: dict[str, set[str]] = {}
    for module, found in GRAPH.items():
        edges.setdefault(unit(module), set()).update(unit(n) for _, _, n, _ in found if unit(n) != unit(module))
    assert not cycles(edges)


def test_no_cycle_between_modules():
    """No two modules import each other, however indirectly. In edge/ only module-level imports count: an
    import inside a function is how MicroPython code defers loading (and heap) until it is needed."""
    edges = {m: {n for _, _, n, fn in found if n != m and not (fn and unit(m) == "edge")} for m, found in GRAPH.items()}
    for m in list(edges):  # a package's __init__ importing its own submodules is how packages export names
        if (SRC / Path(*m.split("."))).is_dir():
            edges[m] = {n for n in edges[m] if not n.startswith(m + ".")}
    assert not cycles(edges)


def test_library_modules_do_not_import_cli_modules():
    """Only `cli.py` and other `commands` modules import a `commands` module (argument parsing helpers)."""
    wrong = [f"{file}:{line}: {name}" for module, found in GRAPH.items()
             if module not in ("camlytics.cli", "camlytics.__main__") and not module.endswith(".commands")
             for file, line, name, _ in found if name.endswith(".commands")]
    assert not wrong, "library code importing a CLI module:\n" + "\n".join(wrong)


def test_the_rules_refuse_the_old_tangles():
    """train, export and runtime import each other through the model layer only; the floors never look up."""
    for a, b in [("train", "export"), ("export", "train"), ("train", "runtime"), ("runtime", "train"),
                 ("sampling", "train"), ("sim", "sources"), ("model", "train"), ("model", "runtime"),
                 ("validate", "model"), ("edge", "errors")]:
        assert b not in allowed(a), (a, b)
    assert cycles({"train": {"export"}, "export": {"runtime"}, "runtime": {"train"}}) == [["export", "runtime", "train"]]
    assert not cycles({u: STAGE_EDGES.get(u, set()) for u in STAGES})  # the allowed edges form no cycle


def test_the_model_layer_and_the_edge_runtimes_do_not_import_torch():
    """`collect --model`, evaluation with --runtime int8/edge/micropython/c and the edge app never pay for PyTorch."""
    code = ("import sys; import camlytics.model.predictor, camlytics.model.inputs, camlytics.model.modelfile, "
            "camlytics.model.int8ref, camlytics.runtime.predictors, camlytics.runtime.launch, camlytics.sampling; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(__import__("camlytics.errors", fromlist=["EDGE_ERRORS"]).EDGE_ERRORS))
def test_every_edge_error_in_the_table_exists(name):
    import importlib

    from camlytics.errors import CamlyticsError, EDGE_ERRORS, host_error_type

    module, _, cls = name.rpartition(".")
    exc_type = getattr(importlib.import_module(module), cls)
    assert issubclass(exc_type, Exception) and unit(module) == "edge"
    assert host_error_type(exc_type("x")) is EDGE_ERRORS[name]
    assert issubclass(EDGE_ERRORS[name], CamlyticsError)
