"""Performance reports of a simulated run: per-layer cycles, utilization, bytes, and the roofline."""
from __future__ import annotations

import math

from tcc.ir.escape import one_line


def roofline(layer: dict, target: dict) -> int:
    """The lower bound of one layer: max(MACs / PEs, bytes / bandwidth), over all cores (their PEs,
    and their DRAM bandwidth up to the shared interface's)."""
    cores = target.get("cores", 1)
    peak = target["array_rows"] * target["array_cols"] * cores
    bandwidth = target["dram_bytes_per_cycle"] * cores
    if cores > 1:
        bandwidth = min(bandwidth, target["hbm_bytes_per_cycle"])
    return int(max(math.ceil(layer["macs"] / peak), math.ceil(layer["min_bytes"] / bandwidth)))


def build_report(metadata: dict, result) -> dict:
    target = metadata["target"]
    layers = []
    for index, static in enumerate(metadata["layers"]):
        measured = result.layers.get(index, {})
        entry = {"index": index, "name": static["name"], "kind": static.get("kind", ""),
                 "mode": static.get("mode", ""), "roofline_cycles": roofline(static, target),
                 "live_bytes": static.get("live_bytes", 0)}
        entry.update(measured)
        entry["macs"] = static["macs"]
        layers.append(entry)
    roof = sum(layer["roofline_cycles"] for layer in layers)
    report = {
        "model": metadata.get("model", ""),
        "cycles": int(result.cycles),
        "roofline_cycles": int(roof),
        "cycles_over_roofline": result.cycles / roof if roof else None,
        "seconds": result.cycles / (target["clock_mhz"] * 1e6),
        "macs": int(sum(layer["macs"] for layer in layers)),
        "pe_utilization": (sum(layer["macs"] for layer in layers)
                           / (target["array_rows"] * target["array_cols"] * target.get("cores", 1)
                              * max(result.cycles, 1))),
        "instructions": int(result.instructions),
        "units_busy": dict(result.units),
        "stall_cycles": int(result.stall_cycles),
        "unit_cycles": {u: dict(c) for u, c in (getattr(result, "unit_cycles", None) or {}).items()},
        "front_cycles": dict(getattr(result, "front_cycles", None) or {}),
        "target": target,
        "layers": layers,
    }
    # Per-mode counters, where the simulator has them: cycles in each PE-array mode and switching,
    # the number of switches, compute-unit busy cycles per mode.
    for key in ("mode_cycles", "mode_busy"):
        counters = getattr(result, key, None)
        if isinstance(counters, dict) and counters:
            report[key] = {str(k): int(v) for k, v in counters.items()}
    if isinstance(getattr(result, "mode_switches", None), int):
        report["mode_switches"] = result.mode_switches
    return report


def mode_cycles(report: dict) -> dict[str, int]:
    """Cycles per PE-array mode: the simulator's per-mode counters when the run carries them,
    else the cycles during which some layer compiled for that mode runs (the union of layer spans)."""
    if isinstance(report.get("mode_cycles"), dict):
        return {str(k): int(v) for k, v in report["mode_cycles"].items()}
    spans: dict[str, list[tuple[int, int]]] = {}
    for layer in report["layers"]:
        if layer.get("cycles"):
            spans.setdefault(layer.get("mode") or "?", []).append((int(layer["start"]), int(layer["end"])))
    out = {}
    for mode, intervals in spans.items():
        total, reach = 0, None
        for start, end in sorted(intervals):
            if reach is None or start > reach:
                total += end - start
                reach = end
            elif end > reach:
                total += end - reach
                reach = end
        out[mode] = total
    return out


def _bar(fraction: float, width: int) -> str:
    """A horizontal bar of ``width`` cells filled to ``fraction`` (eighths of a cell)."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    return ("\u2588" * full + ("" if rest == 0 else " \u258f\u258e\u258d\u258c\u258b\u258a\u2589"[rest])).ljust(width)


def plain(text: str, **_) -> str:
    """The style of text without colour: a stand-in for ``click.style`` off a terminal."""
    return text


def format_report(report: dict, top: int | None = None, style=plain) -> str:
    """A terminal table of the layers (slowest first when ``top`` is given) and the totals.

    ``style(text, fg=..., bold=...)`` colours cells (``click.style`` on a terminal)."""
    layers = report["layers"]
    if top:
        layers = sorted(layers, key=lambda layer: -layer.get("cycles", 0))[:top]
    longest = max([layer.get("cycles", 0) for layer in report["layers"]] + [1])
    names = [one_line(layer["name"]) for layer in layers]
    name_width = min(max([len(name) for name in names] + [5]), 36)
    head = (f"{'#':>4}  {'layer':<{name_width}}  {'kind':<7} {'mode':<5} {'cycles':>9}  {'':<12} {'x roof':>7} "
            f"{'MACs':>11} {'PE util':>7} {'loaded':>9} {'stored':>9}")
    rule = "\u2500" * len(head)
    lines = [style(head, bold=True), rule]
    for layer, name in zip(layers, names):
        cycles = layer.get("cycles", 0)
        ratio = cycles / layer["roofline_cycles"] if layer["roofline_cycles"] else 0.0
        name = name if len(name) <= name_width else "\u2026" + name[-name_width + 1:]
        mode = layer["mode"] or ""
        bar = style(_bar(cycles / longest, 12), fg="magenta" if mode == "bf16" else "cyan")
        util = 100 * layer.get("pe_utilization", 0)
        util_text = f"{util:>6.1f}%"
        lines.append(f"{layer['index']:>4}  {name:<{name_width}}  {layer['kind']:<7} "
                     f"{style(f'{mode:<5}', fg='magenta' if mode == 'bf16' else None)} {cycles:>9}  {bar} "
                     f"{style(f'{ratio:>7.2f}', fg='red' if ratio > 8 else None)} {layer['macs']:>11} "
                     f"{style(util_text, fg='green' if util >= 50 else None)} {layer.get('bytes_loaded', 0):>9} "
                     f"{layer.get('bytes_stored', 0):>9}")
    lines.append(rule)
    ratio = report["cycles_over_roofline"]
    lines.append(style(f"total cycles {report['cycles']}", bold=True)
                 + f"  roofline {report['roofline_cycles']}"
                 + (f" ({ratio:.2f}x)" if ratio is not None else "")
                 + f"  {report['seconds'] * 1e3:.3f} ms at {report['target']['clock_mhz']} MHz"
                 + f"  PE utilization {100 * report['pe_utilization']:.1f}%  instructions {report['instructions']}")
    split = report.get("unit_cycles") or {}
    total = report["cycles"] * report["target"].get("cores", 1)  # a multi-core run sums its cores' counters
    if split and total:
        lines.append("units busy/stall/idle  " + "  ".join(
            f"{unit} {100 * c['busy'] / total:.0f}/{100 * c['stall'] / total:.0f}/{100 * c['idle'] / total:.0f}%"
            for unit, c in split.items()))
    else:
        busy = report.get("units_busy") or {}
        if busy and report["cycles"]:
            lines.append("units busy  " + "  ".join(f"{unit} {100 * cycles / report['cycles']:.0f}%"
                                                     for unit, cycles in busy.items()))
    front = report.get("front_cycles") or {}
    if front and total:
        lines.append("front end  " + "  ".join(f"{k.replace('_', ' ')} {100 * v / total:.0f}%" for k, v in front.items()))
    modes = mode_cycles(report)
    if modes:
        what = "cycles by PE-array mode" if "mode_cycles" in report else "cycles with a layer running, by mode"
        switches = f"  ({report['mode_switches']} switches)" if "mode_switches" in report else ""
        lines.append(f"{what}  " + "  ".join(f"{mode} {cycles}" for mode, cycles in sorted(modes.items()))
                     + switches)
    return "\n".join(lines)
