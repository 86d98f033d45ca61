"""docs/architecture.md's package dependency graph is the tree's: every import (including those
inside functions) goes along an edge the page allows, every allowed edge is used, and no module
imports itself back through others."""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _package_dirs() -> dict[str, str]:
    """Folder -> the package it installs as (pyproject.toml's package-dir)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {folder: package for package, folder in config.items()}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package __init__)."""
    modules = {}
    for folder, package in _package_dirs().items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [package] + list(path.relative_to(ROOT / folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _imports(modules) -> list[tuple[str, str, str]]:
    """(importing module, imported module, file:line) for every import of one of ``modules``."""
    found = []
    for name, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = name.split(".") if is_package else name.split(".")[:-1]
                if node.level:
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                named = [f"{target}.{alias.name}" for alias in node.names]
                targets = [t for t in named if t in modules]
                if len(targets) < len(named):
                    targets.append(target)
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            found += [(name, t, where) for t in targets if t in modules and t != name]
    return found


def _layer(module: str) -> str:
    if module in ("tcc.backends.artifact", "tcc.backends.artifact_metadata"):
        return "artifact"
    part = module.split(".")[1] if "." in module else ""
    return part if part in ("ir", "passes", "frontend", "isa", "backends", "runtime") else "compiler"


def _allowed() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```dependencies\n(.*?)```", text, re.S).group(1)
    allowed = {}
    for line in block.splitlines():
        layer, _, deps = line.partition("->")
        allowed[layer.strip()] = {d.strip() for d in deps.split(",") if d.strip()}
    return allowed


def test_imports_follow_the_documented_dependency_graph():
    allowed = _allowed()
    used: dict[str, set[str]] = {layer: set() for layer in allowed}
    wrong = []
    for src, dst, where in _imports(_modules()):
        a, b = _layer(src), _layer(dst)
        if a == b:
            continue
        used.setdefault(a, set()).add(b)
        if b not in allowed.get(a, set()):
            wrong.append(f"{where}: {src} imports {dst} ({a} -> {b} is not in docs/architecture.md)")
    assert not wrong, "imports going the wrong way:\n" + "\n".join(wrong)
    assert used == allowed, f"docs/architecture.md lists edges no import uses; the tree's graph is {used}"


def test_no_module_imports_itself_back():
    edges: dict[str, set[str]] = {}
    for src, dst, _ in _imports(_modules()):
        edges.setdefault(src, set()).add(dst)
    cycles, state = [], {}

    def visit(module, path):  # depth-first; a back edge to a module on the path is a cycle
        state[module] = "open"
        for nxt in sorted(edges.get(module, ())):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# The sparse target's token simulator shares the average-pool divisors (window geometry, not
# arithmetic) with the pooling kernel; it is the one exception, until that geometry moves to ir/.
_SIMULATOR_USES_OF_THE_INTERPRETER = {("tcc.isa.tokensim.datapath", "tcc.ir.interpreter.kernels_pool")}


def test_the_simulators_do_not_import_the_reference_interpreter():
    """isa/ executes instructions with its own code, sharing only ir/numerics with the reference, so
    that simulator == reference is a check of two executions (docs/architecture.md)."""
    found = {(src, dst) for src, dst, _ in _imports(_modules())
             if src.startswith("tcc.isa") and (dst == "tcc.ir.interpreter" or dst.startswith("tcc.ir.interpreter."))}
    assert found == _SIMULATOR_USES_OF_THE_INTERPRETER
