import subprocess

import pytest


@pytest.fixture
def fake_dot(monkeypatch):
    """Pretend Graphviz's `dot` is on PATH; returns a dict that gets the args and dot source it is fed."""
    import tcc.runtime.html_draw as html_draw

    seen = {}

    def run(args, input, **kwargs):
        seen["args"], seen["dot"] = args, input
        return subprocess.CompletedProcess(args, 0, stdout='<?xml version="1.0"?>\n<svg id="from-dot"></svg>\n')

    monkeypatch.setattr(html_draw.shutil, "which", lambda name: "/usr/bin/dot" if name == "dot" else None)
    monkeypatch.setattr(html_draw.subprocess, "run", run)
    return seen
