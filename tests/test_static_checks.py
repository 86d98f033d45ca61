"""The tree is clean under the linter (ruff) and the type checker (mypy), configured in
pyproject.toml.  Both come with the `test` extra; without them these tests skip."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    pytest.importorskip("ruff")
    result = _run(["ruff", "check", "--no-cache", "--output-format", "concise", "."], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing(tmp_path):
    pytest.importorskip("mypy")
    # The folders install as one package (pyproject's package-dir), which mypy cannot follow:
    # lay the package out under tmp_path as symlinks and check it there.
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(package_dirs.items(), key=lambda item: item[0].count(".")):
        target = tmp_path.joinpath(*package.split("."))
        if package == "tcc":
            target.mkdir()
            for item in (ROOT / folder).iterdir():
                if item.name != "__pycache__":
                    (target / item.name).symlink_to(item)
        else:
            target.symlink_to(ROOT / folder)
    result = _run(["mypy", "-p", "tcc", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                   str(tmp_path / ".mypy_cache")], tmp_path)
    assert result.returncode == 0, result.stdout.replace(str(tmp_path / "tcc"), "tcc") + result.stderr
