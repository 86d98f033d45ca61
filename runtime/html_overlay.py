"""The overlay's HTML report page of a simulated run.

Sections: totals, per-layer cycles and PE utilization bars, the roofline plot, the mode timeline
(int8 vs bf16 layers over time), DRAM use over time (the live activation bytes the compiler's
planner recorded per layer in the artifact) and the graph.  Drawing: html_draw.py.
"""
from __future__ import annotations

import math

from tcc.ir import Module
from tcc.ir.escape import html_text as escape

from .html_draw import GraphNode, draw_graph, hbar, page, size_text, xml_svg
from .report import mode_cycles

MODE_COLOURS = {"int8": "#2b7bb9", "bf16": "#d9661f"}
OTHER_COLOUR = "#888"


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


def memory_svg(report: dict, constant_bytes: int, dram_bytes: int, width: int = 1000) -> str:
    """Constants plus live activations over time (a step per layer start), and the DRAM allocated."""
    live = [layer.get("live_bytes", 0) for layer in report["layers"]]
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
            f"allocated DRAM {size_text(dram_bytes)}</text>"
            f"<text x={left - 4} y={bottom} text-anchor=end>0</text><text x={left - 4} y={top + 10} "
            f"text-anchor=end>{size_text(peak)}</text><text x={left + 4} y={bottom - 4}>constants "
            f"{size_text(constant_bytes)}</text><text x={left + 4} y={top - 8}>peak live activations "
            f"{size_text(max(live, default=0))}</text>"
            f"<text x={left} y={height - 8}>0</text><text x={width - 10} y={height - 8} text-anchor=end>"
            f"{total} cycles</text></svg>")


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
        ("Memory over time", memory_svg(report, constant_bytes, dram_bytes) +
         "<p class=note>Constants plus the activation bytes the DRAM planner keeps alive when each layer starts; "
         "the dashed line is the DRAM the artifact allocates (its planner shares memory among tensors whose "
         "lifetimes do not overlap).</p>"),
        ("Graph", f"<div class=graph>{graph_svg(module, modes)}</div>"),
    ]
    return page(report.get("model", ""), sections)
