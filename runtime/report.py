"""Performance reports of a simulated run: per-layer cycles, utilization, bytes, and the roofline."""
from __future__ import annotations

import math


def roofline(layer: dict, target: dict) -> int:
    """The lower bound of one layer: max(MACs / PEs, bytes / bandwidth)."""
    peak = target["array_rows"] * target["array_cols"]
    return int(max(math.ceil(layer["macs"] / peak), math.ceil(layer["min_bytes"] / target["dram_bytes_per_cycle"])))


def build_report(metadata: dict, result) -> dict:
    target = metadata["target"]
    layers = []
    for index, static in enumerate(metadata["layers"]):
        measured = result.layers.get(index, {})
        entry = {"index": index, "name": static["name"], "kind": static.get("kind", ""),
                 "mode": static.get("mode", ""), "roofline_cycles": roofline(static, target)}
        entry.update(measured)
        entry["macs"] = static["macs"]
        layers.append(entry)
    roof = sum(layer["roofline_cycles"] for layer in layers)
    return {
        "model": metadata.get("model", ""),
        "cycles": int(result.cycles),
        "roofline_cycles": int(roof),
        "cycles_over_roofline": result.cycles / roof if roof else None,
        "seconds": result.cycles / (target["clock_mhz"] * 1e6),
        "macs": int(sum(layer["macs"] for layer in layers)),
        "pe_utilization": (sum(layer["macs"] for layer in layers)
                           / (target["array_rows"] * target["array_cols"] * max(result.cycles, 1))),
        "instructions": int(result.instructions),
        "units_busy": dict(result.units),
        "stall_cycles": int(result.stall_cycles),
        "target": target,
        "layers": layers,
    }


def format_report(report: dict, top: int | None = None) -> str:
    """A terminal table of the layers (slowest first when ``top`` is given) and the totals."""
    layers = report["layers"]
    if top:
        layers = sorted(layers, key=lambda layer: -layer.get("cycles", 0))[:top]
    head = f"{'#':>4} {'layer':<28} {'kind':<8} {'mode':<5} {'cycles':>10} {'roofline':>10} {'x roof':>7} " \
           f"{'MACs':>12} {'PE util':>7} {'loaded':>10} {'stored':>10}"
    lines = [head, "-" * len(head)]
    for layer in layers:
        cycles = layer.get("cycles", 0)
        ratio = cycles / layer["roofline_cycles"] if layer["roofline_cycles"] else 0.0
        lines.append(f"{layer['index']:>4} {layer['name'][:28]:<28} {layer['kind']:<8} {layer['mode']:<5} "
                     f"{cycles:>10} {layer['roofline_cycles']:>10} {ratio:>7.2f} {layer['macs']:>12} "
                     f"{100 * layer.get('pe_utilization', 0):>6.1f}% {layer.get('bytes_loaded', 0):>10} "
                     f"{layer.get('bytes_stored', 0):>10}")
    lines.append("-" * len(head))
    lines.append(f"total cycles {report['cycles']}  roofline {report['roofline_cycles']}  "
                 f"({report['cycles_over_roofline']:.2f}x)  {report['seconds'] * 1e3:.3f} ms at "
                 f"{report['target']['clock_mhz']} MHz  PE utilization {100 * report['pe_utilization']:.1f}%  "
                 f"instructions {report['instructions']}")
    return "\n".join(lines)
