"""The architecture stays easy to see: imports run one way between packages, modules form no cycle, and
``attnlab --help`` (and ``import attnlab``) loads no heavy library.

Every ``import`` in ``src/attnlab`` is read with ``ast``, including imports inside functions (a lazy
import is still a dependency); imports under ``if TYPE_CHECKING:`` are annotations only and skipped.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "attnlab"

# Lower layers never import higher ones. The longest matching prefix gives a module its layer.
LAYERS = {
    "attnlab": 0, "attnlab.config": 0, "attnlab.config_checks": 0, "attnlab.config_files": 0, "attnlab.rundir": 0,
    "attnlab.models.options": 0, "attnlab.data.errors": 0,
    "attnlab.data": 1, "attnlab.models": 1, "attnlab.checkpoints": 1, "attnlab.attention_view": 1,
    "attnlab.decoding": 2,
    "attnlab.viz": 3,
    "attnlab.evaluation": 4,
    "attnlab.training": 5,
    "attnlab.experiments": 6, "attnlab.export": 6,
    "attnlab.serve": 7,
    "attnlab.cli": 8, "attnlab.__main__": 8,
}
HEAVY = ("torch", "lightning", "matplotlib", "sacrebleu", "numpy", "sentencepiece", "ctranslate2", "fastapi")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path) -> set[str]:
    """The attnlab modules ``path`` imports (``from attnlab.x import y`` counts y when it is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("attnlab"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attnlab"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    assert all(layer(name) >= 0 for name in MODULES)


def test_no_upward_arrow() -> None:
    upward = sorted(f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
                    for a, targets in GRAPH.items() for b in targets if b in MODULES and layer(b) > layer(a))
    assert not upward, "\n".join(upward)


def test_no_cycle() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(GRAPH.get(node, ())):
            if target not in MODULES:
                continue
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target] if target in path else [node, target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for name in MODULES:
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_models_import_only_torch() -> None:
    allowed = ("torch", "attnlab.models", "__future__", "math", "dataclasses", "typing", "collections")
    for name, path in MODULES.items():
        if not name.startswith("attnlab.models"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for module in modules:
                assert module.startswith(allowed) or module in ("attnlab.config",), f"{name} imports {module}"


@pytest.mark.parametrize("argv", [["--help"], ["translate", "--help"]])
def test_help_loads_no_heavy_library(argv: list[str]) -> None:
    """``python -m attnlab --help`` run as is (``__main__``, the parser, argparse's exit), then the modules it left."""
    code = "\n".join([
        "import json, runpy, sys",
        f"sys.argv = ['attnlab', *{argv!r}]",
        "try:",
        "    runpy.run_module('attnlab', run_name='__main__', alter_sys=True)",
        "except SystemExit as stop:",
        "    status = stop.code",
        f"print('LOADED', json.dumps([status, sorted(m for m in {HEAVY!r} if m in sys.modules)]))",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.startswith("usage: attnlab"), out.stdout + out.stderr
    status, heavy = json.loads(out.stdout.rsplit("LOADED ", 1)[1])
    assert status == 0 and heavy == [], out.stdout[-400:] + out.stderr


def test_import_loads_no_heavy_library() -> None:
    code = f"import sys, attnlab; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_import_pins_the_math_libraries_thread_counts_unless_the_user_chose() -> None:
    names = ("MKL_DYNAMIC", "OMP_DYNAMIC", "ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    code = f"import os, attnlab; print(*(os.environ[name] for name in {names!r}))"
    env = {k: v for k, v in os.environ.items() if k not in names}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env=env)
    assert out.stdout.split() == ["FALSE", "FALSE", "16"]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env={**env, "MKL_DYNAMIC": "TRUE", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64"})
    assert out.stdout.split() == ["TRUE", "FALSE", "64"]
