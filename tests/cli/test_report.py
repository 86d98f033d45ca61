"""`tcc report`: the terminal table, --json, and the self-contained --html page."""
import json
import re
import xml.etree.ElementTree as ET

import pytest

from tcc.runtime import Session

DIGITS = "examples/digits/digits_cnn.onnx"
CALIB = "examples/digits/digits_calib.npz"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def digits_tcc(tmp_path_factory):
    from tcc.cli import main

    path = tmp_path_factory.mktemp("report") / "d.tcc"
    assert main(["compile", DIGITS, "-t", "overlay", "--calib", CALIB, "-o", str(path)]) == 0
    return path


def test_report_table_json_and_run_report_agree(digits_tcc, tmp_path, tcc_cli):
    code, out, err = tcc_cli("report", digits_tcc, "--json", tmp_path / "r.json")
    assert code == 0, err
    code, _, err = tcc_cli("run", digits_tcc, "-o", tmp_path / "o.npz", "--report", tmp_path / "run.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report == json.loads((tmp_path / "run.json").read_text())  # same inputs (seed 0), same counters
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+\s+/", line)]
    assert [row.split()[1] for row in rows] == [layer["name"] for layer in report["layers"]]
    assert f"total cycles {report['cycles']}" in out
    if "mode_cycles" in report:  # the simulator's per-mode counters partition the run
        assert sum(report["mode_cycles"].values()) == report["cycles"]
        assert f"int8 {report['mode_cycles']['int8']}" in out
    assert "\x1b[" not in out  # no colours when stdout is not a terminal
    code, top, _ = tcc_cli("report", digits_tcc, "--top", 2)
    slowest = sorted(report["layers"], key=lambda layer: -layer["cycles"])[:2]
    assert [line.split()[1] for line in top.splitlines() if re.match(r"\s+\d+\s+/", line)] == \
        [layer["name"] for layer in slowest]


def test_report_json_to_stdout_alone_and_the_table_to_stderr(digits_tcc, tmp_path, tcc_cli):
    """`--json -` makes standard output the JSON document alone (for a pipe into jq); the table goes to
    stderr.  The document is the one `--json FILE` writes."""
    code, out, err = tcc_cli("report", digits_tcc, "--json", "-")
    assert code == 0, err
    assert tcc_cli("report", digits_tcc, "--json", tmp_path / "r.json")[0] == 0
    assert json.loads(out) == json.loads((tmp_path / "r.json").read_text())
    assert "total cycles" in err and "total cycles" not in out
    code, _, err = tcc_cli("report", digits_tcc, "--json", "-", "--html", "-")
    assert code == 2 and "cannot both go to standard output" in err


def test_html_report_is_self_contained_and_draws_every_layer(digits_tcc, tmp_path, tcc_cli):
    code, _, err = tcc_cli("report", digits_tcc, "--html", tmp_path / "r.html", "--json", tmp_path / "r.json")
    assert code == 0, err
    page = (tmp_path / "r.html").read_text()
    report = json.loads((tmp_path / "r.json").read_text())
    assert "<script" not in page and " src=" not in page and "href=" not in page and "@import" not in page
    sections = re.findall(r"<h2>(.*?)</h2>", page)
    assert sections == ["Totals", "Layers", "Roofline", "Mode timeline", "Memory over time", "Graph"]
    svgs = [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", page, re.S)]
    by_title = {}
    for svg in svgs:
        for element in svg.iter():
            title = element.find(f"{SVG}title")
            if title is not None:
                by_title.setdefault(element.tag.replace(SVG, ""), []).append(title.text)
    with_macs = [layer["name"] for layer in report["layers"] if layer["macs"] and layer["cycles"]]
    assert [t.split(":")[0] for t in by_title["circle"]] == with_macs  # roofline points
    spans = [t for t in by_title["rect"] if ": cycles " in t]  # mode timeline bars
    assert [t.split(":")[0] for t in spans] == [layer["name"] for layer in report["layers"] if layer["cycles"]]
    session = Session(digits_tcc)
    ops = [op for op in session.module.ops if op.kind != "const"]
    assert len(by_title["g"]) == len(ops)  # one graph box per op


def test_live_activation_bytes_fit_in_what_the_planner_allocated(digits_tcc):
    session = Session(digits_tcc)
    session.run_dict({"input": __import__("numpy").zeros((1, 1, 16, 16), "float32")})
    report = session.performance_report()
    live = [layer["live_bytes"] for layer in report["layers"]]
    meta = session.artifact.metadata
    assert len(live) == len(report["layers"]) and min(live) > 0
    # The planner may only share memory among tensors that are not alive together.
    assert max(live) <= meta["dram_bytes"] - meta["activation_base"]
    # The first conv reads the 256-byte int8 input and writes its 16x16x16 int8 output.
    assert live[0] >= 256 + 16 * 16 * 16


def test_graphviz_is_used_when_dot_is_on_path(digits_tcc, fake_dot):
    import tcc.runtime.html_overlay as html_overlay

    seen = fake_dot
    module = Session(digits_tcc).module
    svg = html_overlay.graph_svg(module)
    assert svg.startswith('<svg id="from-dot">') and seen["args"] == ["dot", "-Tsvg"]
    ops = [op for op in module.ops if op.kind != "const"]
    edges = sum(1 for op in ops for v in op.operands if v.producer is not None and v.producer.kind != "const")
    assert seen["dot"].count(" -> ") == edges and seen["dot"].count("[label=") == len(ops)
