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


def test_the_simulators_do_not_import_the_reference_interpreter():
    """isa/ executes instructions with its own code, sharing only ir/numerics with the reference, so
    that simulator == reference is a check of two executions (docs/architecture.md)."""
    found = {(src, dst) for src, dst, _ in _imports(_modules())
             if src.startswith("tcc.isa") and (dst == "tcc.ir.interpreter" or dst.startswith("tcc.ir.interpreter."))}
    assert not found, f"isa/ imports the reference interpreter: {sorted(found)}"


# Positional reads of an op's operands or attributes outside ir/ that are allowed, as
# "path: the line's code" -> why.  For a genuinely variadic op a named accessor returns the list
# (``concat.inputs``), so this stays empty unless an op's operand roles are positional by nature.
POSITIONAL_READS_ALLOWED: dict[str, str] = {}


def _positional_reads(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, what) for each ``x.operands[<int>]`` / ``[<int>:]`` / ``[1 - i]``, ``x.attrs[...]`` or
    ``x.attrs.get(...)`` read, and each ``a = x.attrs`` alias, in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and isinstance(node.value, ast.Attribute):
            index = node.slice.lower if isinstance(node.slice, ast.Slice) else node.slice
            if isinstance(index, ast.UnaryOp):
                index = index.operand
            positional = isinstance(index, ast.Constant) and isinstance(index.value, int) or isinstance(index, ast.BinOp)
            if node.value.attr == "operands" and positional:
                found.append((node.lineno, "operands[<int>]"))
            elif node.value.attr == "attrs":
                found.append((node.lineno, "attrs[...]"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "attrs":
            found.append((node.lineno, "attrs.get(...)"))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) and node.value.attr == "attrs" \
                and all(isinstance(t, ast.Name) for t in node.targets):
            found.append((node.lineno, "an alias of attrs"))
    return sorted(found)


def test_the_detector_sees_positional_reads():
    source = "x = op.operands[1]\nrest = op.operands[1:]\nk = op.attrs['axis']\nd = op.attrs.get('d')\na = op.attrs\n" \
             "other = op.operands[1 - i]\nfirst, *_ = op.operands\nop.attrs['k'] = 1\ndel op.attrs['k']\n" \
             "first = op.operands[:1]\n"
    assert [what for _, what in _positional_reads(source, "<test>")] == [
        "operands[<int>]", "operands[<int>]", "attrs[...]", "attrs.get(...)", "an alias of attrs", "operands[<int>]"]


def test_ops_are_read_through_named_accessors():
    """Outside ir/ an op's operands and attributes are read by name (``conv.w``, ``req.shift``:
    the accessors define_op generates), not by position or string key, so renaming or adding an
    operand is one declaration.  Code generic over op kinds unpacks ``first, *rest = op.operands``."""
    wrong = []
    for folder, package in _package_dirs().items():
        if package == "tcc.ir":
            continue
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text()
            lines = source.splitlines()
            for line, what in _positional_reads(source, str(path)):
                where = f"{path.relative_to(ROOT)}: {lines[line - 1].strip()}"
                if where not in POSITIONAL_READS_ALLOWED:
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not wrong, "read these through the op's named accessors (ir/opdef.py):\n" + "\n".join(wrong)
