"""A self-contained HTML page of a simulated run: inline CSS and SVG, no scripts, no network.

Sections: totals, per-layer cycles and PE utilization bars, the roofline plot, the mode timeline
(int8 vs bf16 layers over time), DRAM use over time, and the graph (Graphviz's SVG when ``dot``
is on PATH, else a plain layered layout drawn here). The style, bars (``hbar``), graph drawing
(``draw_graph``) and page shell (``page``) are shared with the sparse target's page (html_sparse.py).
"""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass

from tcc.ir import Module
from tcc.ir.escape import dot_string
from tcc.ir.escape import html_text as escape

from .report import mode_cycles

MODE_COLOURS = {"int8": "#2b7bb9", "bf16": "#d9661f"}
OTHER_COLOUR = "#888"
ELEMENT_BYTES = {"i8": 1, "u8": 1, "bool": 1, "i16": 2, "bf16": 2, "f16": 2, "i32": 4, "f32": 4, "i64": 8, "f64": 8}
CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { padding: 2px 8px; text-align: right; } th { border-bottom: 1px solid #aaa; }
td.name, th.name { text-align: left; max-width: 22em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.totals td { text-align: left; } .note { color: #666; font-size: 0.9em; }
.graph { max-height: 900px; overflow: auto; border: 1px solid #eee; }
svg text { font: 11px system-ui, sans-serif; }
"""


_TAG = re.compile(r"<[^<>]+>")
_BARE_ATTRIBUTE = re.compile(r"(\s[\w:-]+)=([^\s'\"/>]+)")


def xml_svg(svg: str) -> str:
    """Quote the bare attribute values of ``svg`` and declare its namespace, so the markup is XML
    as well as HTML (a saved .svg opens in any viewer; tests parse it)."""
    svg = _TAG.sub(lambda m: _BARE_ATTRIBUTE.sub(r'\1="\2"', m.group(0)), svg)
    return svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1) if "xmlns=" not in svg[:200] else svg


def _colour(mode: str) -> str:
    return MODE_COLOURS.get(mode, OTHER_COLOUR)


# -- sections ----------------------------------------------------------------------------------
def _totals(report: dict) -> str:
    ratio = report.get("cycles_over_roofline")
    rows = [("model", report.get("model", "")), ("cycles", report["cycles"]),
            ("time", f"{report['seconds'] * 1e3:.3f} ms at {report['target']['clock_mhz']} MHz"),
            ("roofline bound", f"{report['roofline_cycles']} cycles" + (f" ({ratio:.2f}x)" if ratio else "")),
            ("PE utilization", f"{100 * report['pe_utilization']:.1f}%"), ("MACs", report["macs"]),
            ("instructions", report["instructions"])]
    for unit, busy in (report.get("units_busy") or {}).items():
        rows.append((f"{unit} unit busy", f"{busy} cycles ({100 * busy / max(report['cycles'], 1):.0f}%)"))
    for mode, cycles in sorted(mode_cycles(report).items()):
        busy = (report.get("mode_busy") or {}).get(mode)
        rows.append((f"{mode} mode" if mode != "switch" else "mode switching",
                     f"{cycles} cycles" + (f" (compute unit busy {busy})" if busy is not None else "")))
    if "mode_switches" in report:
        rows.append(("mode switches", report["mode_switches"]))
    return "<table class=totals>" + "".join(f"<tr><th class=name>{escape(k)}</th><td>{escape(v)}</td></tr>"
                                             for k, v in rows) + "</table>"


def _layer_table(report: dict) -> str:
    layers = report["layers"]
    longest = max([layer.get("cycles", 0) for layer in layers] + [1])
    head = ("<tr><th>#</th><th class=name>layer</th><th>kind</th><th>mode</th><th>cycles</th><th></th>"
            "<th>x roofline</th><th>PE util</th><th></th><th>loaded B</th><th>stored B</th></tr>")
    rows = []
    for layer in layers:
        cycles = layer.get("cycles", 0)
        util = layer.get("pe_utilization", 0.0)
        ratio = cycles / layer["roofline_cycles"] if layer["roofline_cycles"] else 0.0
        cycle_bar = hbar(cycles / longest, _colour(layer.get("mode", "")), 160)
        util_bar = hbar(util, "#3a9a4a", 100)
        rows.append(f"<tr><td>{layer['index']}</td><td class=name title='{escape(layer['name'])}'>{escape(layer['name'])}</td>"
                    f"<td>{escape(layer['kind'])}</td><td>{escape(layer.get('mode', ''))}</td><td>{cycles}</td>"
                    f"<td>{cycle_bar}</td><td>{ratio:.2f}</td><td>{100 * util:.1f}%</td><td>{util_bar}</td>"
                    f"<td>{layer.get('bytes_loaded', 0)}</td><td>{layer.get('bytes_stored', 0)}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def hbar(fraction: float, colour: str, width: int, title: str = "") -> str:
    """A bar ``width`` pixels long filled to ``fraction``; ``title`` is its hover text."""
    w = max(0.0, min(1.0, fraction)) * width
    hover = f"<title>{escape(title)}</title>" if title else ""
    return xml_svg(f"<svg width={width} height=12>{hover}<rect width={width} height=12 fill='#f2f2f2'/>"
            f"<rect width={w:.1f} height=12 fill='{colour}'/></svg>")


def _log_axis(lo: float, hi: float):
    lo, hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return lo, max(hi, lo + 1)


def roofline_svg(report: dict, width: int = 640, height: int = 400) -> str:
    """Attained MACs per cycle against operational intensity (MACs per byte), log-log, with the
    compute roof (array size) and the bandwidth roof (DRAM bytes per cycle)."""
    target = report["target"]
    peak = target["array_rows"] * target["array_cols"]
    bandwidth = target["dram_bytes_per_cycle"]
    points = []
    for layer in report["layers"]:
        cycles, macs = layer.get("cycles", 0), layer.get("macs", 0)
        moved = layer.get("bytes_loaded", 0) + layer.get("bytes_stored", 0)
        if cycles and macs and moved:
            points.append((macs / moved, macs / cycles, layer))
    if not points:
        return "<p class=note>No layer does multiply-accumulates: no roofline to draw.</p>"
    x0, x1 = _log_axis(min(p[0] for p in points + [(peak / bandwidth / 10, 0, None)]),
                       max(p[0] for p in points + [(peak / bandwidth * 10, 0, None)]))
    y0, y1 = _log_axis(min(p[1] for p in points), peak * 1.5)
    left, bottom, right, top = 60, height - 40, width - 20, 20

    def px(x):
        return left + (math.log10(x) - x0) / (x1 - x0) * (right - left)

    def py(y):
        return bottom - (math.log10(y) - y0) / (y1 - y0) * (bottom - top)

    parts = [f"<svg width={width} height={height} role=img><rect x={left} y={top} width={right - left} "
             f"height={bottom - top} fill='none' stroke='#bbb'/>"]
    for e in range(x0, x1 + 1):
        parts.append(f"<line x1={px(10 ** e):.1f} x2={px(10 ** e):.1f} y1={top} y2={bottom} stroke='#eee'/>"
                     f"<text x={px(10 ** e):.1f} y={bottom + 15} text-anchor=middle>1e{e}</text>")
    for e in range(y0, y1 + 1):
        parts.append(f"<line x1={left} x2={right} y1={py(10 ** e):.1f} y2={py(10 ** e):.1f} stroke='#eee'/>"
                     f"<text x={left - 5} y={py(10 ** e) + 4:.1f} text-anchor=end>1e{e}</text>")
    ridge = peak / bandwidth
    start = max(10 ** x0, 10 ** y0 / bandwidth)  # where the bandwidth roof enters the plot
    roof = [(x, min(peak, bandwidth * x)) for x in (start, min(max(ridge, start), 10 ** x1), 10 ** x1)]
    if roof:
        parts.append("<polyline fill='none' stroke='#c33' stroke-width=2 points='"
                     + " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in roof) + "'/>")
    parts.append(f"<text x={right - 4} y={py(peak) - 5:.1f} text-anchor=end fill='#c33'>peak {peak} MACs/cycle</text>")
    for x, y, layer in points:
        parts.append(f"<circle cx={px(x):.1f} cy={py(y):.1f} r=4 fill='{_colour(layer.get('mode', ''))}' "
                     f"fill-opacity=0.8><title>{escape(layer['name'])}: {x:.2f} MACs/B, {y:.1f} MACs/cycle</title></circle>")
    parts.append(f"<text x={(left + right) / 2} y={height - 5} text-anchor=middle>MACs per DRAM byte moved</text>"
                 f"<text x=14 y={(top + bottom) / 2} transform='rotate(-90 14 {(top + bottom) / 2})' "
                 f"text-anchor=middle>MACs per cycle</text></svg>")
    return xml_svg("".join(parts))


def timeline_svg(report: dict, width: int = 1000) -> str:
    """One lane per PE-array mode; each layer a bar over [start, end] cycles."""
    total = max(report["cycles"], 1)
    modes = sorted({layer.get("mode") or "?" for layer in report["layers"]})
    lane, left = 26, 50
    height = lane * len(modes) + 30
    scale = (width - left - 10) / total
    parts = [f"<svg width={width} height={height} role=img>"]
    for i, mode in enumerate(modes):
        parts.append(f"<text x=4 y={i * lane + 17}>{escape(mode)}</text>"
                     f"<rect x={left} y={i * lane + 3} width={width - left - 10} height={lane - 6} fill='#f4f4f4'/>")
    for layer in report["layers"]:
        if not layer.get("cycles"):
            continue
        i = modes.index(layer.get("mode") or "?")
        x = left + layer["start"] * scale
        w = max(layer["cycles"] * scale, 1)
        parts.append(f"<rect x={x:.1f} y={i * lane + 3} width={w:.1f} height={lane - 6} "
                     f"fill='{_colour(layer.get('mode', ''))}' stroke='white' stroke-width=0.5>"
                     f"<title>{escape(layer['name'])}: cycles {layer['start']}..{layer['end']}</title></rect>")
    y = lane * len(modes) + 18
    parts.append(f"<text x={left} y={y}>0</text><text x={width - 10} y={y} text-anchor=end>{total} cycles</text></svg>")
    return xml_svg("".join(parts))


def live_bytes_by_layer(module: Module, report: dict) -> list[int]:
    """Bytes of activations alive while each layer runs, from the IR's liveness in program order
    (a layer's bytes: the most alive at any op of its ONNX node)."""
    ops = [op for op in module.ops if op.kind != "const"]
    # A layer (the ops of one ONNX node, e.g. qconv + requantize) holds its inputs and outputs
    # for its whole span: positions are those of the first and last op of the same location.
    first_of, last_of = {}, {}
    for i, op in enumerate(ops):
        first_of.setdefault(op.loc, i)
        last_of[op.loc] = i
    start = {id(op): first_of[op.loc] for op in ops}
    end = {id(op): last_of[op.loc] for op in ops}
    last = {}
    # Device tensors only: int8 and bf16 activations (float inputs and outputs stay on the host,
    # int32 accumulators on chip).
    values = [v for v in list(module.inputs) + [r for op in ops for r in op.results]
              if v.type.dtype in ("i8", "u8", "bf16")]
    outputs = {id(v) for v in module.output_values()}
    for v in values:
        readers = [end[id(u)] for u in v.users if id(u) in end]
        last[id(v)] = len(ops) if id(v) in outputs else max(readers, default=end.get(id(v.producer), 0))
    born = {id(v): (start[id(v.producer)] if v.producer is not None else 0) for v in values}
    last = {k: max(v, born[k]) for k, v in last.items()}
    size = {id(v): v.type.size * ELEMENT_BYTES.get(v.type.dtype, 4) for v in values}
    events = [0] * (len(ops) + 2)
    for v in values:
        events[born[id(v)]] += size[id(v)]
        events[last[id(v)] + 1] -= size[id(v)]
    alive, running = [], 0
    for i in range(len(ops)):
        running += events[i]
        alive.append(running)
    by_loc: dict[str, int] = {}
    for op, live in zip(ops, alive):
        by_loc[op.loc] = max(by_loc.get(op.loc, 0), live)
    return [by_loc.get(layer["name"], 0) for layer in report["layers"]]


def memory_svg(report: dict, module: Module, constant_bytes: int, dram_bytes: int, width: int = 1000) -> str:
    """Constants plus live activations over time (a step per layer start), and the DRAM allocated."""
    live = live_bytes_by_layer(module, report)
    total = max(report["cycles"], 1)
    peak = max([constant_bytes + b for b in live] + [dram_bytes, 1])
    left, height, top, bottom = 70, 230, 24, 200
    scale = (width - left - 10) / total

    def py(y):
        return bottom - y / peak * (bottom - top)

    points = [(left, py(constant_bytes))]
    for layer, bytes_live in sorted(zip(report["layers"], live), key=lambda p: p[0].get("start", 0)):
        x = left + layer.get("start", 0) * scale
        points += [(x, points[-1][1]), (x, py(constant_bytes + bytes_live))]
    points.append((width - 10, points[-1][1]))
    area = points + [(width - 10, bottom), (left, bottom)]
    return xml_svg(f"<svg width={width} height={height} role=img>"
            f"<polygon fill='#9cc3e4' points='{' '.join(f'{x:.1f},{y:.1f}' for x, y in area)}'/>"
            f"<rect x={left} y={py(constant_bytes):.1f} width={width - left - 10} "
            f"height={bottom - py(constant_bytes):.1f} fill='#bbb'/>"
            f"<line x1={left} x2={width - 10} y1={py(dram_bytes):.1f} y2={py(dram_bytes):.1f} stroke='#c33' "
            f"stroke-dasharray='4 3'/><text x={width - 12} y={py(dram_bytes) + 14:.1f} text-anchor=end fill='#c33'>"
            f"allocated DRAM {_size(dram_bytes)}</text>"
            f"<text x={left - 4} y={bottom} text-anchor=end>0</text><text x={left - 4} y={top + 10} "
            f"text-anchor=end>{_size(peak)}</text><text x={left + 4} y={bottom - 4}>constants "
            f"{_size(constant_bytes)}</text><text x={left + 4} y={top - 8}>peak live activations "
            f"{_size(max(live, default=0))}</text>"
            f"<text x={left} y={height - 8}>0</text><text x={width - 10} y={height - 8} text-anchor=end>"
            f"{total} cycles</text></svg>")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


@dataclass
class GraphNode:
    """One box of a drawn graph: a bold heading, a detail line, a hover title, an outline colour."""
    key: str
    heading: str
    detail: str
    title: str
    colour: str


def graph_svg(module: Module, modes: dict[str, str] | None = None) -> str:
    """The module's non-constant ops as an SVG: Graphviz when ``dot`` is available, else layered."""
    modes = modes or {}
    ops = [op for op in module.ops if op.kind != "const"]
    keys = {id(op): f"n{i}" for i, op in enumerate(ops)}
    nodes = [GraphNode(keys[id(op)], op.kind, op.results[0].name,
                       f"{op.kind} %{op.results[0].name} (ONNX node {op.loc})", _colour(modes.get(op.loc, "")))
             for op in ops]
    edges = [(keys[id(v.producer)], keys[id(op)], "") for op in ops for v in op.operands
             if v.producer is not None and id(v.producer) in keys]
    return draw_graph(nodes, edges)


def draw_graph(nodes: list[GraphNode], edges: list[tuple[str, str, str]]) -> str:
    """``nodes`` (in topological order) and ``edges`` (source key, destination key, hover label) as an
    SVG: Graphviz's layout when ``dot`` is on PATH, else the plain layered one drawn here."""
    if shutil.which("dot"):
        try:
            return _graphviz(nodes, edges)
        except (OSError, subprocess.SubprocessError):
            pass  # fall back to the built-in layout
    return layered_svg(nodes, edges)


def dot_source(nodes: list[GraphNode], edges: list[tuple[str, str, str]]) -> str:
    """The graph in Graphviz's DOT language; every ID and label is a ``dot_string``."""
    lines = ["digraph g {", "node [shape=box, style=filled, fontname=Helvetica, fontsize=10];"]
    for node in nodes:
        label = dot_string(node.heading, node.detail[:40])  # cut before escaping, never inside an escape
        lines.append(f'{dot_string(node.key)} [label={label}, fillcolor={dot_string(node.colour + "30")}];')
    for src, dst, label in edges:
        edge = f"{dot_string(src)} -> {dot_string(dst)}"
        lines.append(f"{edge};" if not label else f"{edge} [tooltip={dot_string(label)}];")
    lines.append("}")
    return "\n".join(lines)


def _graphviz(nodes: list[GraphNode], edges: list[tuple[str, str, str]]) -> str:
    svg = subprocess.run(["dot", "-Tsvg"], input=dot_source(nodes, edges), capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return svg[svg.index("<svg"):]


def layered_svg(nodes: list[GraphNode], edges: list[tuple[str, str, str]]) -> str:
    """Nodes placed in rows by longest path from the sources; edges as straight lines."""
    preds: dict[str, list[str]] = {}
    for src, dst, _ in edges:
        preds.setdefault(dst, []).append(src)
    depth: dict[str, int] = {}
    for node in nodes:  # topological order
        depth[node.key] = 1 + max([depth.get(p, -1) for p in preds.get(node.key, [])], default=-1)
    rows: dict[int, list[GraphNode]] = {}
    for node in nodes:
        rows.setdefault(depth[node.key], []).append(node)
    box_w, box_h, gap_x, gap_y = 150, 30, 20, 24
    widest = max([len(r) for r in rows.values()] + [1])
    width = widest * (box_w + gap_x) + gap_x + max([_bow(depth[d] - depth[s], box_w) for s, d, _ in edges] + [0])
    height = len(rows) * (box_h + gap_y) + gap_y
    where = {}
    for d, row in rows.items():
        offset = (width - len(row) * (box_w + gap_x) + gap_x) / 2
        for i, node in enumerate(row):
            where[node.key] = (offset + i * (box_w + gap_x), gap_y + d * (box_h + gap_y))
    parts = [f"<svg width={width} height={height} role=img>"]
    for src, dst, label in edges:
        if src in where and dst in where:
            (px, py), (x, y) = where[src], where[dst]
            title = f"<title>{escape(label)}</title>" if label else ""
            x1, y1, x2 = px + box_w / 2, py + box_h, x + box_w / 2
            bow = _bow(depth[dst] - depth[src], box_w)
            parts.append(f"<path d='M{x1:.0f},{y1} C{x1 + bow:.0f},{y1 + gap_y} {x2 + bow:.0f},{y - gap_y} "
                         f"{x2:.0f},{y}' fill='none' stroke='#999'>{title}</path>")
    for node in nodes:
        x, y = where[node.key]
        short = node.detail if len(node.detail) <= 22 else "\u2026" + node.detail[-21:]
        parts.append(f"<g><title>{escape(node.title)}</title>"
                     f"<rect x={x:.0f} y={y} width={box_w} height={box_h} rx=4 fill='white' "
                     f"stroke='{node.colour}' stroke-width=1.5/>"
                     f"<text x={x + box_w / 2:.0f} y={y + 12} text-anchor=middle font-weight=bold>"
                     f"{escape(node.heading)}</text>"
                     f"<text x={x + box_w / 2:.0f} y={y + 25} text-anchor=middle>{escape(short)}</text></g>")
    parts.append("</svg>")
    return xml_svg("".join(parts))


def _bow(rows_spanned: int, box_w: int) -> float:
    """How far right an edge bows: one past a row would run under that row's boxes."""
    return 0.0 if rows_spanned <= 1 else 0.75 * box_w + 12 * (rows_spanned - 2)


# -- the page ----------------------------------------------------------------------------------
def render_html(report: dict, module: Module, constant_bytes: int, dram_bytes: int) -> str:
    """The whole page for ``report`` (runtime/report.py's dict) of the artifact whose IR is ``module``."""
    modes = {layer["name"]: layer.get("mode", "") for layer in report["layers"]}
    has_counters = isinstance(report.get("mode_cycles"), dict)
    legend = " ".join(f"<span style='color:{c}'>\u25a0 {m}</span>" for m, c in MODE_COLOURS.items())
    sections = [
        ("Totals", _totals(report)),
        ("Layers", f"<p class=note>Bars: cycles (colour = mode: {legend}) and PE utilization.</p>"
                   + _layer_table(report)),
        ("Roofline", roofline_svg(report)),
        ("Mode timeline", timeline_svg(report) + "<p class=note>Each layer's measured span, in the lane of "
         "the mode it was compiled for; " + ("the simulator's per-mode cycle counters are under Totals.</p>"
                                             if has_counters else "this run carries no per-mode counters.</p>")),
        ("Memory over time", memory_svg(report, module, constant_bytes, dram_bytes) +
         "<p class=note>Constants plus the activations alive (by the IR's liveness) when each layer starts; "
         "the dashed line is the DRAM the artifact allocates (its planner shares memory among tensors whose "
         "lifetimes do not overlap).</p>"),
        ("Graph", f"<div class=graph>{graph_svg(module, modes)}</div>"),
    ]
    return page(report.get("model", ""), sections)


def page(model: str, sections: list[tuple[str, str]]) -> str:
    """The HTML document: the shared style, a heading naming ``model``, then (title, markup) sections."""
    body = "".join(f"<h2>{escape(title)}</h2>{content}" for title, content in sections)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>tcc report: {escape(model)}"
            f"</title><style>{CSS}</style></head><body><h1>tcc performance report: {escape(model)}</h1>"
            f"{body}</body></html>\n")
