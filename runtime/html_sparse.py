"""The self-contained HTML page of a sparse dataflow run (SparseSession.performance_report()).

Sections: totals (frame latency, slowest module, throughput, DSP/BRAM/LUT used against the
budget), per-module bars, the token timeline (each module's first to last output token), and the
FIFO graph. The style, bars, graph layout and page shell are html_draw.py's.
"""
from __future__ import annotations

from tcc.ir.escape import html_text as escape

from .html_draw import GraphNode, draw_graph, hbar, page, xml_svg

KIND_COLOURS = {"input": "#888", "conv": "#2b7bb9", "pointwise": "#5b9bd5", "depthwise": "#3a9a4a",
                "add": "#d9661f", "concat": "#c9a227", "maxpool": "#8e5bb5", "avgpool": "#b07cc6",
                "gpool": "#a0522d", "fc": "#c33"}
OTHER_COLOUR = "#555"


def kind_colour(kind: str) -> str:
    return KIND_COLOURS.get(kind, OTHER_COLOUR)


def parallelism_text(parallelism: dict) -> str:
    """``pi x po`` for convs and fc, ``p`` for the other modules (as the terminal table writes it)."""
    return f"{parallelism['pi']}x{parallelism['po']}" if "pi" in parallelism else str(parallelism["p"])


def resource_rows(report: dict) -> list[tuple[str, int | float, int]]:
    """(name, used, budget) of the design: DSP, BRAM36 (two BRAM18 each) and LUT."""
    used, target = report["resources"], report["target"]
    return [("DSP", used["dsp"], target["dsp"]), ("BRAM36", used["bram18"] / 2, target["bram36"]),
            ("LUT", used["lut"], target["lut"])]


def _totals(report: dict) -> str:
    target = report["target"]
    rows = [("model", escape(report["model"])), ("mode", escape(report["mode"])),
            ("frame latency", f"{report['cycles']} cycles ({report['seconds'] * 1e6:.2f} us at "
                              f"{target['clock_mhz']:g} MHz)"),
            ("slowest module", f"{escape(report['bottleneck'])} busy {report['bottleneck_cycles']} cycles"),
            ("throughput", f"{report['frames_per_second']:.0f} frames/s streamed (clock / slowest module)"),
            ("budget", escape(target.get("name", "")))]
    for name, used, budget in resource_rows(report):
        fraction = used / budget if budget else 0.0
        bar = hbar(fraction, "#c33" if fraction > 0.95 else "#3a9a4a", 200,
                   f"{name}: {used:g} of {budget} ({100 * fraction:.1f}%)")
        rows.append((name, f"{bar} {used:g} / {budget} ({100 * fraction:.1f}%)"))
    return "<table class=totals>" + "".join(f"<tr><th class=name>{escape(k)}</th><td>{v}</td></tr>"
                                             for k, v in rows) + "</table>"


def _module_table(report: dict, specs: dict[str, dict]) -> str:
    modules = report["modules"]
    longest = max([m["busy_cycles"] for m in modules] + [1])
    most_tokens = max([max(m["tokens_in"], m["tokens_out"]) for m in modules] + [1])
    head = ("<tr><th>#</th><th class=name>module</th><th>kind</th><th>par</th><th>busy</th><th></th>"
            "<th>tokens in</th><th>out</th><th></th><th>util</th><th></th><th>DSP</th><th>BRAM36</th>"
            "<th>LUT</th><th class=name>ONNX node</th></tr>")
    rows = []
    for index, m in enumerate(modules):
        name = m["name"]
        busy = hbar(m["busy_cycles"] / longest, kind_colour(m["kind"]), 160,
                    f"{name}: busy {m['busy_cycles']} cycles")
        tokens = hbar(m["tokens_out"] / most_tokens, "#9cc3e4", 100,
                      f"{name}: tokens in {m['tokens_in']}, out {m['tokens_out']}")
        util = hbar(m["utilisation"], "#3a9a4a", 100,
                    f"{name}: utilisation {100 * m['utilisation']:.1f}% of {report['cycles']} cycles")
        resources = specs.get(name, {}).get("resources", {})
        label = f"<b>{escape(name)} *</b>" if name == report["bottleneck"] else escape(name)
        rows.append(f"<tr><td>{index}</td><td class=name>{label}</td><td>{escape(m['kind'])}</td>"
                    f"<td>{escape(parallelism_text(m['parallelism']))}</td><td>{m['busy_cycles']}</td>"
                    f"<td>{busy}</td><td>{m['tokens_in']}</td><td>{m['tokens_out']}</td><td>{tokens}</td>"
                    f"<td>{100 * m['utilisation']:.1f}%</td><td>{util}</td>"
                    f"<td>{escape(resources.get('dsp', ''))}</td><td>{resources.get('bram18', 0) / 2:g}</td>"
                    f"<td>{escape(resources.get('lut', ''))}</td>"
                    f"<td class=name title='{escape(m['loc'])}'>{escape(m['loc'])}</td></tr>")
    return f"<table>{''.join([head] + rows)}</table>"


def token_timeline_svg(report: dict, width: int = 1000) -> str:
    """One lane per module, a bar from its first to its last output token (the simulator's
    first_token and finished counters); the dashed line is the frame latency."""
    modules = report["modules"]
    total = max([report["cycles"]] + [m["finished"] for m in modules] + [1])
    lane, left, right = 18, 130, 10
    height = lane * len(modules) + 30
    scale = (width - left - right) / total
    parts = [f"<svg width={width} height={height} role=img>"]
    for i, m in enumerate(modules):
        y = i * lane
        x, w = left + m["first_token"] * scale, max((m["finished"] - m["first_token"]) * scale, 2)
        weight = " font-weight=bold" if m["name"] == report["bottleneck"] else ""
        parts.append(f"<text x=4 y={y + 13}{weight}>{escape(m['name'])}</text>"
                     f"<rect x={left} y={y + 2} width={width - left - right} height={lane - 4} fill='#f4f4f4'/>"
                     f"<rect x={x:.1f} y={y + 2} width={w:.1f} height={lane - 4} fill='{kind_colour(m['kind'])}'>"
                     f"<title>{escape(m['name'])}: tokens out {m['first_token']}..{m['finished']} "
                     f"({m['tokens_out']} tokens, busy {m['busy_cycles']} cycles)</title></rect>")
    end = left + report["cycles"] * scale
    bottom = lane * len(modules)
    parts.append(f"<line x1={end:.1f} x2={end:.1f} y1=0 y2={bottom} stroke='#c33' stroke-dasharray='4 3'/>"
                 f"<text x={left} y={bottom + 18}>0</text><text x={width - right} y={bottom + 18} "
                 f"text-anchor=end>{report['cycles']} cycles (frame latency)</text></svg>")
    return xml_svg("".join(parts))


def fifo_graph_svg(report: dict, metadata: dict) -> str:
    """Modules as boxes and FIFOs as edges (hover: stream, width, depth)."""
    measured = {m["name"]: m for m in report["modules"]}
    nodes = []
    for spec in metadata["modules"]:
        m = measured.get(spec["name"], {})
        nodes.append(GraphNode(spec["name"], f"{spec['kind']} {parallelism_text(spec['parallelism'])}",
                               spec["name"], f"{spec['name']} ({spec['kind']} at {spec['loc']}), busy "
                               f"{m.get('busy_cycles', '?')} cycles", kind_colour(spec["kind"])))
    edges = [(f["src"], f["dst"], f"{f['stream']}: {f['width_bits']} bits x {f['depth']}")
             for f in metadata["fifos"]]
    return draw_graph(nodes, edges)


def render_sparse_html(report: dict, metadata: dict) -> str:
    """The whole page for ``report`` (SparseSession.performance_report()) of the artifact whose
    metadata (module configuration stream, FIFO graph) is ``metadata``."""
    specs = {spec["name"]: spec for spec in metadata["modules"]}
    legend = " ".join(f"<span style='color:{c}'>\u25a0 {k}</span>" for k, c in KIND_COLOURS.items()
                      if any(m["kind"] == k for m in report["modules"]))
    sections = [
        ("Totals", _totals(report)),
        ("Modules", f"<p class=note>Bars: busy cycles (colour = module kind: {legend}; relative to the "
                    "slowest module, marked *), tokens out, and utilisation (busy cycles over the frame "
                    "latency). Resources are the cost model's per module.</p>" + _module_table(report, specs)),
        ("Token timeline", token_timeline_svg(report) + "<p class=note>Each module's output tokens, from the "
         "first to the last reaching its FIFO, as the simulator timed them for this frame.</p>"),
        ("FIFO graph", f"<div class=graph>{fifo_graph_svg(report, metadata)}</div>"),
    ]
    return page(report["model"], sections)
