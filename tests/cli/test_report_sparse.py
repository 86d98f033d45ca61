"""`tcc report` on sparse dataflow artifacts: --json and the self-contained --html page."""
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tcc.runtime.html_draw as html_draw
from tcc.runtime.html_sparse import fifo_graph_svg
from tcc.runtime.sparse_session import SparseSession

EVENTS = "examples/events/"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    from tcc.cli import main

    folder = tmp_path_factory.mktemp("report_sparse")
    path = folder / "ev.tcc"
    assert main(["compile", EVENTS + "events_dense.onnx", "-t", "sparse", "--sparse-mode", "submanifold",
                 "--calib", EVENTS + "events_calib.npz", "-o", str(path)]) == 0
    frame = np.load(EVENTS + "events_test.npz")["input"][:1]
    np.savez(folder / "in.npz", input=frame)
    return path, folder / "in.npz", frame


def _titles(svg: ET.Element, tag: str) -> list[str]:
    """The hover titles of ``svg``'s elements of kind ``tag`` (the root included), in document order."""
    out = []
    for element in svg.iter(SVG + tag):
        title = element.find(SVG + "title")
        if title is not None:
            out.append(title.text)
    return out


def test_json_is_the_sessions_performance_report(events, tmp_path, tcc_cli):
    path, inputs, frame = events
    code, out, err = tcc_cli("report", path, "--inputs", inputs, "--json", tmp_path / "r.json")
    assert code == 0, err
    session = SparseSession(path)
    session.run(None, {"input": frame})
    expected = json.loads(json.dumps(session.performance_report()))
    assert json.loads((tmp_path / "r.json").read_text()) == expected
    assert f"frame latency {expected['cycles']} cycles" in out


def test_html_page_draws_every_module_from_the_report(events, tmp_path, tcc_cli, monkeypatch):
    monkeypatch.setattr(html_draw.shutil, "which", lambda name: None)  # the built-in graph layout
    path, inputs, _ = events
    code, out, err = tcc_cli("report", path, "--inputs", inputs, "--html", tmp_path / "r.html",
                             "--json", tmp_path / "r.json")
    assert code == 0, err
    assert "frame latency" in out and f"wrote {tmp_path / 'r.html'}" in err
    page = (tmp_path / "r.html").read_text()
    report = json.loads((tmp_path / "r.json").read_text())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and " src=" not in page and "href=" not in page and "@import" not in page
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["Totals", "Modules", "Token timeline", "FIFO graph"]
    svgs = [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", page, re.S)]
    bars = [t for svg in svgs for t in _titles(svg, "svg")]  # a bar's title is its root's

    modules, cycles = report["modules"], report["cycles"]
    assert [t for t in bars if ": busy " in t] == [f"{m['name']}: busy {m['busy_cycles']} cycles" for m in modules]
    assert [t for t in bars if ": tokens in " in t] == \
        [f"{m['name']}: tokens in {m['tokens_in']}, out {m['tokens_out']}" for m in modules]
    assert [t for t in bars if ": utilisation " in t] == \
        [f"{m['name']}: utilisation {100 * m['busy_cycles'] / cycles:.1f}% of {cycles} cycles" for m in modules]
    used, target = report["resources"], report["target"]
    for name, value, budget in (("DSP", used["dsp"], target["dsp"]), ("BRAM36", used["bram18"] / 2, target["bram36"]),
                                ("LUT", used["lut"], target["lut"])):
        assert f"{name}: {value:g} of {budget} ({100 * value / budget:.1f}%)" in bars
    assert f"{report['bottleneck']} busy {max(m['busy_cycles'] for m in modules if m['kind'] != 'fc')}" in page

    lanes = [t for svg in svgs for t in _titles(svg, "rect") if ": tokens out " in t]
    spans = [re.match(r"(\S+): tokens out (\d+)\.\.(\d+)", t).groups() for t in lanes]
    assert spans == [(m["name"], str(m["first_token"]), str(m["finished"])) for m in modules]
    assert max(int(last) for _, _, last in spans) == cycles  # the frame ends with the last token

    graph = svgs[-1]
    metadata = SparseSession(path).metadata
    boxes = [t.split(" ")[0] for t in _titles(graph, "g")]
    assert boxes == [m["name"] for m in modules]
    fifos = _titles(graph, "path")
    assert fifos == [f"{f['stream']}: {f['width_bits']} bits x {f['depth']}" for f in metadata["fifos"]]


def test_fifo_graph_goes_through_graphviz_when_dot_is_on_path(events, fake_dot):
    path, _, frame = events
    seen = fake_dot
    session = SparseSession(path)
    session.run(None, {"input": frame})
    svg = fifo_graph_svg(session.performance_report(), session.metadata)
    assert svg.startswith('<svg id="from-dot">') and seen["args"] == ["dot", "-Tsvg"]
    assert seen["dot"].count(" -> ") == len(session.metadata["fifos"])
    assert seen["dot"].count("[label=") == len(session.metadata["modules"])
