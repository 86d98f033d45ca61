"""Performance report of a heterogeneous run: per partition, device cycles or host wall time, and
the bytes that cross between partitions."""
from __future__ import annotations

from tcc.ir.escape import one_line

from .report import format_report, plain


def build_hetero_report(metadata: dict, run: list[dict] | None) -> dict:
    if run is None:
        raise ValueError("no run to report on: call run() first")
    partitions = []
    device_cycles, device_seconds, host_seconds = 0, 0.0, 0.0
    for stat, entry in zip(run, metadata["partitions"]):
        row = {k: v for k, v in stat.items() if k != "device"}
        row["node_names"] = entry["nodes"]
        if "device" in stat:
            device = stat["device"]
            row.update(cycles=device["cycles"], seconds=device["seconds"], layers=device["layers"],
                       macs=device["macs"], target=device["target"], roofline_cycles=device["roofline_cycles"],
                       cycles_over_roofline=device["cycles_over_roofline"],
                       pe_utilization=device["pe_utilization"], instructions=device["instructions"],
                       units_busy=device["units_busy"])
            device_cycles += device["cycles"]
            device_seconds += device["seconds"]
        else:
            host_seconds += stat["wall_seconds"]
        partitions.append(row)
    crossing = sum(p["bytes_in"] for p in partitions)
    return {"model": metadata.get("model", ""), "heterogeneous": True, "partitions": partitions,
            "device_cycles": device_cycles, "device_seconds": device_seconds,
            "host_wall_seconds": host_seconds, "bytes_crossing": crossing,
            "host_ops": metadata.get("host_ops", [])}


def _names(nodes: list[str], width: int = 40) -> str:
    text = ", ".join(one_line(node) for node in nodes)
    return text if len(text) <= width else text[:width - 1] + "\u2026"


def format_hetero_report(report: dict, top: int | None = None, style=plain) -> str:
    """The partition table, then each device partition's layer table."""
    head = f"{'#':>3}  {'where':<6} {'nodes':>5} {'device cycles':>13} {'host ms':>9} {'bytes in':>10} {'bytes out':>10}  nodes"
    lines = [style(head, bold=True), "\u2500" * len(head)]
    for p in report["partitions"]:
        cycles = f"{p['cycles']:>13}" if "cycles" in p else f"{'':>13}"
        host = f"{1e3 * p['wall_seconds']:>9.3f}" if p["kind"] == "host" else f"{'':>9}"
        lines.append(f"{p['index']:>3}  {p['kind']:<6} {p['nodes']:>5} {cycles} {host} {p['bytes_in']:>10} "
                     f"{p['bytes_out']:>10}  {_names(p['node_names'])}")
    lines.append("\u2500" * len(head))
    lines.append(style(f"device {report['device_cycles']} cycles ({1e3 * report['device_seconds']:.3f} ms "
                       f"modeled)", bold=True)
                 + f"  host {1e3 * report['host_wall_seconds']:.3f} ms wall (reference interpreter)"
                 + f"  {report['bytes_crossing']} bytes cross partitions")
    for f in report["host_ops"]:
        lines.append(one_line(f"  host: node {f['node']!r} ({f['kind']}): {f['reason']}"))
    for p in report["partitions"]:
        if "cycles" in p:
            lines += ["", style(f"device partition {p['index']}", bold=True), format_report(p, top, style)]
    return "\n".join(lines)
