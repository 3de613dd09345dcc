"""The package's layers, stated as data and checked two ways.

Statically: every ``router/**/*.py`` is parsed and each of its imports (at module level,
inside functions, under ``TYPE_CHECKING``) is checked against what its layer may use.
At run time: a fresh interpreter imports a layer's modules and must not have loaded the
heavy libraries (or the router packages) that layer keeps out.

    base      router, errors, vectors, memory, limits: no other router module
    extras    router.extras (the optional-dependency check, used by model.pull and
              quality): base only
    model     base, extras, model; never grpc; contract and encoder never pull/graph,
              onnx or safetensors
    routing   base, routing; never grpc, onnxruntime, tokenizers, onnx (the engine takes
              a TextEncoder; the model is never imported)
    quality   base, extras, routing, quality; never grpc, onnxruntime (nor the model's
              libraries); matplotlib only in report.py, imported lazily; only run.py
              uses the engine (evaluate, tuning, render, report work on predictions)
    serving   base, routing, model, api, serving; never quality
    triage    base, routing, api, triage: a client of the engine (handed to it) or of a
              server (the generated stubs); never model, serving, quality, onnxruntime
    cli       anything
    api       generated: api only

matplotlib is imported by router.quality.report alone, lazily (cli aside).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "router"


@dataclass(frozen=True)
class Layer:
    #: Modules: "router.errors" is that module, "router.model.*" the package and below.
    modules: tuple[str, ...]
    #: Layers whose modules this one may import (its own only when listed).
    may_import: tuple[str, ...]
    #: Third-party top-level packages it never imports.
    never: tuple[str, ...] = ()


LAYERS: dict[str, Layer] = {
    "base": Layer(
        ("router", "router.errors", "router.vectors", "router.memory", "router.limits"), ()
    ),
    "extras": Layer(("router.extras",), ("base",)),
    "model": Layer(
        ("router.model.*",),
        ("base", "extras", "model"),
        never=("grpc", "matplotlib"),
    ),
    "routing": Layer(
        ("router.routing.*",),
        ("base", "routing"),
        never=("grpc", "onnxruntime", "tokenizers", "onnx", "safetensors", "matplotlib"),
    ),
    "quality": Layer(
        ("router.quality.*",),
        ("base", "extras", "routing", "quality"),
        never=("grpc", "onnxruntime", "tokenizers", "onnx", "safetensors"),
    ),
    "serving": Layer(
        ("router.serving.*",),
        ("base", "routing", "model", "api", "serving"),
        never=("matplotlib",),
    ),
    "triage": Layer(
        ("router.triage.*",),
        ("base", "routing", "api", "triage"),
        never=("onnxruntime", "tokenizers", "onnx", "safetensors", "matplotlib"),
    ),
    "cli": Layer(
        ("router.cli",),
        ("base", "extras", "model", "routing", "quality", "serving", "api", "triage"),
    ),
    "api": Layer(("router.api.*",), ("api",)),
}

#: Rules finer than a layer: module -> (router modules, third-party packages) it never imports.
NARROWER: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "router.model.contract": (("router.model.pull", "router.model.graph"), ("onnx", "safetensors")),
    "router.model.token_graph": (
        ("router.model.pull", "router.model.graph"),
        ("onnx", "safetensors"),
    ),
    # metrics, sweeps, tuning and their rendering work on predictions: only run.py builds
    # an engine
    **{
        f"router.quality.{name}": (("router.routing.engine",), ())
        for name in ("evaluate", "ticket_eval", "tuning", "render", "report")
    },
}

#: matplotlib is imported only here, and only lazily (inside a function or TYPE_CHECKING).
MATPLOTLIB_HOME = "router.quality.report"


def layer_of(module: str) -> str | None:
    """The layer holding ``module`` (longest match wins), or None."""
    best: tuple[int, str] | None = None
    for name, layer in LAYERS.items():
        for pattern in layer.modules:
            if pattern.endswith(".*"):
                package = pattern[:-2]
                hit = module == package or module.startswith(package + ".")
                size = len(package)
            else:
                hit, size = module == pattern, len(pattern)
            if hit and (best is None or size > best[0]):
                best = (size, name)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def is_router_module(name: str) -> bool:
    if name != "router" and not name.startswith("router."):
        return False
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@dataclass(frozen=True)
class Import:
    target: str  # absolute: a router module, or a third-party module
    line: int
    lazy: bool  # inside a function or an ``if TYPE_CHECKING:`` block

    def where(self, module: str) -> str:
        return f"{module}:{self.line} imports {self.target}"


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_in(text: str, module: str, is_package: bool = False) -> list[Import]:
    """Every import statement of ``module``'s source, wherever it sits, made absolute."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def walk(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # "from router.model import graph" imports the module router.model.graph
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if is_router_module(sub) else base, node.lineno, lazy))
        if isinstance(node, ast.If) and _type_checking(node.test):
            for stmt in node.body:
                walk(stmt, True)
            for stmt in node.orelse:
                walk(stmt, lazy)
            return
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            walk(child, inner)

    walk(ast.parse(text), False)
    return found


def imports_of(path: Path) -> list[Import]:
    text = path.read_text(encoding="utf-8")
    return imports_in(text, module_name(path), is_package=path.name == "__init__.py")


def violations(module: str, imports: list[Import]) -> list[str]:
    """What ``module`` imports that its layer (or a narrower rule) does not allow."""
    name = layer_of(module)
    if name is None:
        return [f"{module} is in no layer: place it in LAYERS ({Path(__file__).name})"]
    layer = LAYERS[name]
    banned_modules, banned_packages = NARROWER.get(module, ((), ()))
    problems: list[str] = []
    for imp in imports:
        top = imp.target.split(".")[0]
        if top == "router":
            target = layer_of(imp.target)
            if target is None:
                problems.append(f"{imp.where(module)}, which is in no layer")
            elif target not in layer.may_import:
                problems.append(f"{imp.where(module)}: layer {name} may not import layer {target}")
            if any(imp.target == b or imp.target.startswith(b + ".") for b in banned_modules):
                problems.append(f"{imp.where(module)}: {module} never imports it")
            continue
        if top in layer.never:
            problems.append(f"{imp.where(module)}: layer {name} never imports {top}")
        if top in banned_packages:
            problems.append(f"{imp.where(module)}: {module} never imports {top}")
        if top == "matplotlib" and name != "cli":
            if module != MATPLOTLIB_HOME:
                problems.append(f"{imp.where(module)}: matplotlib only in {MATPLOTLIB_HOME}")
            elif not imp.lazy:
                problems.append(f"{imp.where(module)} at import time: import it lazily")
    return problems


@pytest.mark.parametrize("path", sources(), ids=module_name)
def test_imports_respect_the_layers(path: Path) -> None:
    problems = violations(module_name(path), imports_of(path))
    assert not problems, "\n".join(problems)


def test_every_layer_holds_modules_and_lazy_imports_are_seen() -> None:
    """Guards the static check itself: it finds each layer's modules and the lazy imports."""
    assert {layer_of(module_name(p)) for p in sources()} == set(LAYERS)
    report = imports_of(PACKAGE / "quality" / "report.py")
    matplotlib = [i for i in report if i.target.split(".")[0] == "matplotlib"]
    assert matplotlib and all(i.lazy for i in matplotlib)
    cli = [i for i in imports_of(PACKAGE / "cli.py") if i.target == "router.model.loading"]
    assert cli and all(i.lazy for i in cli)  # only inside functions
    assert any(i.target == "router.model.graph" for i in imports_of(PACKAGE / "model" / "pull.py"))


def test_a_violation_names_the_module_line_and_import() -> None:
    text = (
        "from __future__ import annotations\n"
        "import grpc\n"
        "from . import head\n"
        "from ..quality import evaluate\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import matplotlib.pyplot\n"
        "\n"
        "def later():\n"
        "    from router.model.token_graph import TokenGraphEncoder\n"
    )
    module = "router.routing.probe"
    imports = imports_in(text, module)
    assert [(i.target, i.line, i.lazy) for i in imports] == [
        ("__future__", 1, False),
        ("grpc", 2, False),
        ("router.routing.head", 3, False),
        ("router.quality.evaluate", 4, False),
        ("typing", 5, False),
        ("matplotlib.pyplot", 7, True),
        ("router.model.token_graph", 10, True),
    ]
    assert violations(module, imports) == [
        "router.routing.probe:2 imports grpc: layer routing never imports grpc",
        "router.routing.probe:4 imports router.quality.evaluate: "
        "layer routing may not import layer quality",
        "router.routing.probe:7 imports matplotlib.pyplot: layer routing never imports matplotlib",
        "router.routing.probe:7 imports matplotlib.pyplot: "
        "matplotlib only in router.quality.report",
        "router.routing.probe:10 imports router.model.token_graph: "
        "layer routing may not import layer model",
    ]
    eager = imports_in("import matplotlib\n", MATPLOTLIB_HOME)
    assert violations(MATPLOTLIB_HOME, eager) == [
        "router.quality.report:1 imports matplotlib at import time: import it lazily"
    ]
    assert violations("router.model.contract", imports_in("import onnx\n", "x")) == [
        "router.model.contract:1 imports onnx: router.model.contract never imports onnx"
    ]
    assert violations("router.nowhere", []) == [
        "router.nowhere is in no layer: place it in LAYERS (test_layers.py)"
    ]


# ---------------------------------------------------------------------------- run time

#: What a fresh interpreter imports, and what must then be absent from sys.modules.
RUNTIME: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "routing": (
        tuple(f"router.routing.{p.stem}" for p in sorted((PACKAGE / "routing").glob("[!_]*.py"))),
        ("grpc", "onnxruntime", "tokenizers", "onnx", "matplotlib"),
    ),
    "quality": (
        tuple(
            f"router.quality.{p.stem}"
            for p in sorted((PACKAGE / "quality").glob("[!_]*.py"))
            if p.stem != "report"
        ),
        ("grpc", "onnxruntime", "tokenizers", "onnx", "matplotlib"),
    ),
    "quality.pure": (
        tuple(
            f"router.quality.{name}"
            for name in ("evaluate", "ticket_eval", "tuning", "render", "report")
        ),
        ("grpc", "onnxruntime", "matplotlib", "router.routing.engine"),
    ),
    "model.contract": (
        ("router.model.contract",),
        ("grpc", "onnxruntime", "tokenizers", "onnx", "safetensors", "matplotlib"),
    ),
    "model.encoder": (("router.model.token_graph",), ("grpc", "onnx", "safetensors", "matplotlib")),
    "serving": (
        tuple(f"router.serving.{p.stem}" for p in sorted((PACKAGE / "serving").glob("[!_]*.py"))),
        ("matplotlib", "onnx", "safetensors"),
    ),
    "triage": (
        tuple(f"router.triage.{p.stem}" for p in sorted((PACKAGE / "triage").glob("[!_]*.py"))),
        ("onnxruntime", "tokenizers", "onnx", "matplotlib"),
    ),
}

PROBE = """\
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("case", sorted(RUNTIME))
def test_a_fresh_interpreter_loads_only_what_the_layer_allows(case: str) -> None:
    modules, absent = RUNTIME[case]
    layer = layer_of(modules[0])
    assert layer is not None and all(layer_of(m) == layer for m in modules), modules
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    assert set(modules) <= set(loaded)
    what = f"importing {', '.join(modules)} (layer {layer})"
    problems = [
        f"{what} loaded {package}"
        for package in absent
        if any(m == package or m.startswith(package + ".") for m in loaded)
    ]
    allowed = {layer, *LAYERS[layer].may_import}
    problems += [
        f"{what} loaded {m} (layer {layer_of(m)})"
        for m in loaded
        if m.split(".")[0] == "router" and layer_of(m) not in allowed
    ]
    assert not problems, "\n".join(problems)
