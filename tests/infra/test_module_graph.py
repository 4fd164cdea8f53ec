"""The modules of infra/ form no import circle: each imports on its own, and the graph of
``infra.*`` imports (read from the source, top-level and function-level alike) is acyclic."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[2] / "infra"
MODULES = sorted(
    "infra." + ".".join(p.relative_to(INFRA).with_suffix("").parts).removesuffix(".__init__")
    for p in INFRA.rglob("*.py") if p.name != "__main__.py"
)


def _imports(module: str) -> set[str]:
    """The ``infra.*`` modules ``module`` imports anywhere in its source."""
    path = INFRA.joinpath(*module.split(".")[1:]).with_suffix(".py")
    if not path.exists():
        path = INFRA.joinpath(*module.split(".")[1:], "__init__.py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("infra"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("infra"))
    return {m for m in found if m in MODULES and m != module and m not in ("infra", "infra.bootstrap")}


def test_no_import_circle_in_infra():
    graph = {m: _imports(m) for m in MODULES}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail(f"import circle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [module])


def test_the_config_leaf_imports_no_other_infra_module():
    assert _imports("infra.config") == set()


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone(module: str):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=INFRA.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
