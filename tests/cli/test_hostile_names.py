"""Hostile ONNX names (newlines, quotes, backslashes, NUL, ``*/``, ``</script>``, printf formats,
terminal and bidi controls, 5000-character names) through every generator: the IR text parses back
to the same names, the listings keep one line per entry, the generated C++ compiles and runs without
the injected call, the HTML pages hold no injected tag and the DOT source no broken-out string."""
from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import onnx
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EVENTS, DIGITS = EXAMPLES / "events", EXAMPLES / "digits"

#: Each tries to end the context it lands in: a C++ line comment (newline, trailing backslash, ``??/``)
#: or string, an IR string, a listing line, HTML text or attribute, a DOT string (a trailing backslash
#: escapes the closing quote; ``\N``, ``\l`` are DOT escapes), a printf format.
HOSTILE = [
    'x\nstd::system("touch PWNED");//',
    '*/ std::system("touch PWNED"); /*',
    "q\"uote's",
    "trailing\\",
    "nul\x00byte",
    "</script><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "%s%n%x",
    "bidi\u202eevil\r\u2028line\u0085",
    "dot\\N\\l",
    "tri??/",
    "\x1b[31mred",
    "L" * 5000,
]


def hostile_name(i: int) -> str:
    return f"{i}:{HOSTILE[i % len(HOSTILE)]}"


def hostile_model(source: Path, keep=("input",)) -> onnx.ModelProto:
    """``source`` with every node and tensor renamed to a hostile name, except ``keep`` (the input the
    calibration data is keyed by)."""
    model = onnx.load(str(source))
    graph = model.graph
    renamed: dict[str, str] = {}

    def rename(name: str) -> str:
        if name and name not in keep and name not in renamed:
            renamed[name] = hostile_name(len(renamed))
        return renamed.get(name, name)

    for i, node in enumerate(graph.node):
        node.name = hostile_name(1000 + i)
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        info.name = rename(info.name)
    return model


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The hostile events model as IR and as a sparse artifact, and the hostile digits model as an
    overlay artifact, compiled by the CLI."""
    from tcc.cli import main

    folder = tmp_path_factory.mktemp("hostile")
    onnx.save(hostile_model(EVENTS / "events_dense.onnx"), folder / "events.onnx")
    onnx.save(hostile_model(DIGITS / "digits_cnn.onnx"), folder / "digits.onnx")
    assert main(["compile", str(folder / "events.onnx"), "-o", str(folder / "events.tir")]) == 0
    assert main(["compile", str(folder / "events.onnx"), "-t", "sparse", "--calib", str(EVENTS / "events_calib.npz"),
                 "-o", str(folder / "events.tcc")]) == 0
    assert main(["compile", str(folder / "digits.onnx"), "-t", "overlay", "--calib",
                 str(DIGITS / "digits_calib.npz"), "-o", str(folder / "digits.tcc")]) == 0
    return folder


def test_ir_text_round_trips_every_hostile_name(built):
    from tcc.ir import parse_module, print_module

    text = (built / "events.tir").read_text(encoding="utf-8")
    module = parse_module(text)
    names = {v.name for v in module.values()} | {op.loc for op in module.ops}
    assert all(any(name.endswith(":" + h) for name in names) for h in HOSTILE)
    assert print_module(module) == text
    assert all(line.startswith(("module ", "  ", "}", "blobs {")) for line in text.splitlines())


def test_sparse_listings_keep_one_line_per_entry(built, tcc_cli):
    from tcc.backends.sparse import SparseArtifact

    meta = SparseArtifact.load(built / "events.tcc").metadata
    code, out, _ = tcc_cli("disasm", built / "events.tcc")
    assert code == 0
    # Header (2), table head, one line per module, FIFO heading, one per FIFO, host line.
    assert len(out.splitlines()) == 3 + len(meta["modules"]) + 1 + len(meta["fifos"]) + 1
    assert not any(line.startswith("std::system") for line in out.splitlines())
    assert "\x1b" not in out and "\x00" not in out and "\u202e" not in out
    code, out, _ = tcc_cli("report", built / "events.tcc")
    assert code == 0 and "\x1b" not in out and not any(line.startswith("std::system") for line in out.splitlines())
    assert len(out.splitlines()) == 2 + len(meta["modules"]) + 2


def test_explain_keeps_one_line_per_node(built, tcc_cli):
    code, out, err = tcc_cli("explain", built / "digits.onnx", "--calib", DIGITS / "digits_calib.npz")
    assert code == 0, err
    nodes = len(onnx.load(str(built / "digits.onnx")).graph.node)
    assert len(out.splitlines()) == 1 + nodes + 1  # heading, one line per node, totals
    assert "\x1b" not in out and "\x00" not in out


def test_verify_table_keeps_one_line_per_layer(built, tcc_cli):
    code, out, err = tcc_cli("verify", built / "digits.onnx", "--calib", DIGITS / "digits_calib.npz", "--samples", "1")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line[:4].strip().isdigit()]
    assert rows and all(line.split()[0] == str(i) for i, line in enumerate(rows))
    assert "\x1b" not in out and "\x00" not in out and not any(line.startswith("std::") for line in out.splitlines())


def _code_outside_comments_and_strings(path: Path) -> str:
    stripped = subprocess.run(["g++", "-fpreprocessed", "-dD", "-E", "-P", str(path)], capture_output=True,
                              text=True, check=True).stdout
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', stripped)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_hls_top_compiles_and_runs_without_the_injected_call(built, tcc_cli, tmp_path):
    from tcc.backends.sparse import SparseArtifact

    code, _, err = tcc_cli("hls", built / "events.tcc", "-o", tmp_path)
    assert code == 0, err
    top = tmp_path / "top.cpp"
    assert "system" not in _code_outside_comments_and_strings(top)
    subprocess.run(["g++", "-std=c++17", "-O0", "-DTCC_TESTBENCH", "-o", str(tmp_path / "top"), str(top)],
                   check=True, capture_output=True, cwd=tmp_path)
    printed = subprocess.run([str(tmp_path / "top")], input=b"1\n3 4 5 5\n", capture_output=True, check=True,
                             cwd=tmp_path).stdout  # one input token (row 3, column 4, both channels 5)
    assert not (tmp_path / "PWNED").exists()
    sink = SparseArtifact.load(built / "events.tcc").metadata["modules"][-1]["output"]
    assert printed.startswith(b"stream " + sink.encode() + b"\n")  # the C string literal holds the exact name


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)


@pytest.mark.parametrize("artifact", ["events.tcc", "digits.tcc"])
def test_html_report_holds_no_injected_markup(built, tcc_cli, artifact, tmp_path):
    page_path = tmp_path / "page.html"
    code, _, err = tcc_cli("report", built / artifact, "--html", page_path)
    assert code == 0, err
    page = page_path.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    assert not parser.tags & {"script", "img"} and not any(a.startswith("on") for a in parser.attrs)
    assert "\x00" not in page and "\x1b" not in page
    assert "&lt;/script&gt;&lt;script&gt;" in page  # the name is there, as text


def test_dot_source_keeps_every_name_inside_its_string():
    from tcc.ir.escape import dot_string
    from tcc.runtime.html_draw import GraphNode, dot_source

    nodes = [GraphNode(hostile_name(i), hostile_name(i + 1), hostile_name(i + 2), "t", "#888")
             for i in range(len(HOSTILE))]
    edges = [(hostile_name(i), hostile_name(i + 1), hostile_name(i + 3)) for i in range(len(HOSTILE) - 1)]
    source = dot_source(nodes, edges)
    string = r'"(?:[^"\\\n]|\\[\\"n])*"'  # only the escapes dot_string writes: \\, \" and the \n line break
    node = re.compile(rf"{string} \[label={string}, fillcolor={string}\];")
    edge = re.compile(rf"{string} -> {string} \[tooltip={string}\];")
    lines = source.splitlines()
    assert lines[0] == "digraph g {" and lines[-1] == "}"
    assert [bool(node.fullmatch(line)) for line in lines[2:2 + len(nodes)]] == [True] * len(nodes)
    assert [bool(edge.fullmatch(line)) for line in lines[2 + len(nodes):-1]] == [True] * len(edges)
    assert dot_string("a\\") == r'"a\\\\"' and dot_string('"', "x") == r'"\"\nx"'


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_cpp_escapes_hold_exactly_the_text(tmp_path):
    """cpp_string's literal prints the name's exact bytes; cpp_comment's comments leave the program intact."""
    from tcc.ir.escape import cpp_comment, cpp_string

    body = "\n".join(f"// {cpp_comment(h)}\n/* {cpp_comment(h)} */\n  std::fwrite({cpp_string(h)}, 1, "
                     f"{len(h.encode())}, stdout); std::fputc(0, stdout);" for h in HOSTILE)
    (tmp_path / "names.cpp").write_text(f"#include <cstdio>\nint main() {{\n{body}\n  return 0;\n}}\n")
    subprocess.run(["g++", "-std=c++11", "-trigraphs", "-o", str(tmp_path / "names"), str(tmp_path / "names.cpp")],
                   check=True, capture_output=True)
    out = subprocess.run([str(tmp_path / "names")], capture_output=True, check=True).stdout
    assert out == b"".join(h.encode() + b"\0" for h in HOSTILE)


@pytest.mark.parametrize("field, value", [("name", 'm01_conv"); std::system("x'), ("kernel", "3>(); std::system(\"x\"); f<1"),
                                          ("kind", "conv\n#include </etc/passwd>")])
def test_hls_refuses_a_hand_edited_artifact_with_code_in_a_field(built, tcc_cli, tmp_path, field, value):
    from tcc.backends.sparse import SparseArtifact

    artifact = SparseArtifact.load(built / "events.tcc")
    artifact.metadata["modules"][1][field] = value
    artifact.save(tmp_path / "edited.tcc")  # re-checksummed: only the type checks can stop it
    code, _, err = tcc_cli("hls", tmp_path / "edited.tcc", "-o", tmp_path / "out")
    # the loader's metadata checks (backends/artifact_metadata.py) or, past them, hls's own name checks
    assert code == 2 and ("malformed artifact metadata" in err or "not written by tcc" in err)
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "top.cpp").exists()
