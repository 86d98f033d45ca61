"""The HTML reports' drawing toolkit: inline CSS and SVG, no scripts, no network.

Both report pages (html_overlay.py, html_sparse.py) are built from these: the page shell
(``page``), bars (``hbar``), graph drawing (``draw_graph``: Graphviz's SVG when ``dot`` is on
PATH, else a plain layered layout drawn here) and ``xml_svg``, which keeps every SVG valid XML.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from tcc.ir.escape import dot_string
from tcc.ir.escape import html_text as escape

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


def hbar(fraction: float, colour: str, width: int, title: str = "") -> str:
    """A bar ``width`` pixels long filled to ``fraction``; ``title`` is its hover text."""
    w = max(0.0, min(1.0, fraction)) * width
    hover = f"<title>{escape(title)}</title>" if title else ""
    return xml_svg(f"<svg width={width} height=12>{hover}<rect width={width} height=12 fill='#f2f2f2'/>"
            f"<rect width={w:.1f} height=12 fill='{colour}'/></svg>")


def size_text(n: int) -> str:
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


def page(model: str, sections: list[tuple[str, str]]) -> str:
    """The HTML document: the shared style, a heading naming ``model``, then (title, markup) sections."""
    body = "".join(f"<h2>{escape(title)}</h2>{content}" for title, content in sections)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>tcc report: {escape(model)}"
            f"</title><style>{CSS}</style></head><body><h1>tcc performance report: {escape(model)}</h1>"
            f"{body}</body></html>\n")
