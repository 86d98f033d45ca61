"""The C++ dataflow description of a sparse design: the module templates and a generated top.

``emit_cpp(artifact, folder)`` writes ``esda_modules.hpp`` (one template per module kind) and
``top.cpp``: ROM contents of every module (weights, biases, requantization parameters,
backgrounds), one stream per FIFO of the artifact's graph (duplicated where two modules read it),
and the module instances in an HLS dataflow region.  Compiled with ``-DTCC_TESTBENCH`` the top
gains a ``main`` that reads one frame's input tokens from stdin (``N``, then ``row col f0 f1 ...``
per token) and prints every sink stream's tokens, so it runs as a C++ program.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tcc.ir.escape import cpp_comment, cpp_string, is_cpp_identifier
from tcc.ir.fileio import write_atomic

from .artifact import SparseArtifact
from .compile import FIFO_DEPTH as FIFO_DEPTH_DEFAULT
from .errors import SparseError

HEADER = Path(__file__).resolve().parent / "esda_modules.hpp"
KINDS = ("input", "conv", "pointwise", "depthwise", "maxpool", "avgpool", "concat", "add", "gpool", "fc")
ROUNDING = {"half_even": "esda::HALF_EVEN", "half_up": "esda::HALF_UP", "half_away": "esda::HALF_AWAY",
            "floor": "esda::FLOOR"}


def _array(ctype: str, name: str, values) -> str:
    flat = np.asarray(values).reshape(-1)
    body = ", ".join(str(int(v)) for v in flat) if flat.size else "0"
    return f"static const {ctype} {name}[] = {{{body}}};"


def _requant(lines: list[str], name: str, rq: dict) -> str:
    lines.append(_array("int32_t", f"{name}_mult", rq["multiplier"]))
    lines.append(_array("int32_t", f"{name}_shift", rq["shift"]))
    in_zp = np.atleast_1d(rq["in_zero_point"])
    lines.append(_array("int32_t", f"{name}_inzp", in_zp))
    if rq["rounding"] not in ROUNDING:
        raise SparseError(f"{name}: rounding {rq['rounding']!r} has no C++ template")
    lines.append(f"static const esda::Requant {name} = {{{name}_mult, {name}_shift, {len(rq['multiplier'])}, "
                 f"{rq['zero_point']}, {rq['qmin']}, {rq['qmax']}, {rq['pre_shift']}, {ROUNDING[rq['rounding']]}, "
                 f"{name}_inzp, {in_zp.size}}};")
    return name


def _roms(spec: dict, weights: dict) -> list[str]:
    n = spec["name"]
    lines = [f"// {n}: {cpp_comment(spec['kind'])} at {cpp_comment(spec['loc'])}"]
    lines.append(_array("int32_t", f"{n}_bg", spec["background"]))
    if "weight" in spec:
        lines.append(_array("int8_t", f"{n}_w", weights[spec["weight"]]))
        lines.append(_array("int32_t", f"{n}_wzp", spec["weight_zero_point"]))
        if spec.get("bias"):
            lines.append(_array("int32_t", f"{n}_b", weights[spec["bias"]]))
    if "requant" in spec:
        _requant(lines, f"{n}_rq", spec["requant"])
    for i, rq in enumerate(spec.get("rescale", [])):
        if rq is not None:
            _requant(lines, f"{n}_rs{i}", rq)
    if spec["kind"] == "add":
        _requant(lines, f"{n}_rqa", spec["requant_lhs"])
        _requant(lines, f"{n}_rqb", spec["requant_rhs"])
    return lines


def _call(spec: dict, ins: list[str], out: str, mode: str, by_stream: dict) -> str:
    """One module instance; a stream's background ROM is named after the module writing it."""
    n, kind, par = spec["name"], spec["kind"], spec["parallelism"]

    def _bg_name(stream: str) -> str:
        return f"{by_stream[stream]['name']}_bg"

    cin, h, w = spec["in_shape"]
    cout, ho, wo = spec["out_shape"]
    bias = f"{n}_b" if spec.get("bias") else "nullptr"
    if kind in ("conv", "pointwise", "depthwise"):
        src = spec["inputs"][0]
        pad_active = mode == "exact" and any(b != spec["in_zero_point"] for b in by_stream[src]["background"])
        pi, po = (par["p"], par["p"]) if kind == "depthwise" else (par["pi"], par["po"])
        return (f"esda::conv_module<{cin}, {cout}, {h}, {w}, {ho}, {wo}, {spec['kernel']}, {spec['stride']}, "
                f"{spec['pad']}, {str(kind == 'depthwise').lower()}, {str(mode == 'submanifold').lower()}, "
                f"{str(pad_active).lower()}, {pi}, {po}>({ins[0]}, {out}, {n}_w, {n}_wzp, "
                f"{len(spec['weight_zero_point'])}, {bias}, {spec['in_zero_point']}, {_bg_name(src)}, {n}_rq);")
    if kind == "maxpool":
        return (f"esda::maxpool_module<{cin}, {h}, {w}, {ho}, {wo}, {spec['kernel']}, {spec['stride']}, {spec['pad']}, "
                f"{str(mode == 'submanifold').lower()}, {par['p']}>({ins[0]}, {out}, {_bg_name(spec['inputs'][0])});")
    if kind == "avgpool":
        return (f"esda::avgpool_module<{cin}, {h}, {w}, {ho}, {wo}, {spec['kernel']}, {spec['stride']}, {spec['pad']}, "
                f"{str(mode == 'submanifold').lower()}, {par['p']}>({ins[0]}, {out}, {_bg_name(spec['inputs'][0])}, "
                f"{spec['in_zero_point']}, {spec['multiplier']}LL, {spec['shift']}, {spec['zero_point']}, "
                f"{spec['qmin']}, {spec['qmax']});")
    if kind == "concat":
        if len(ins) != 2:
            raise SparseError(f"module {n}: the C++ concat template joins two branches, this one has {len(ins)}")
        ca, cb = spec["in_channels"]
        rescale = [f"&{n}_rs{i}" if rq is not None else "nullptr" for i, rq in enumerate(spec["rescale"])]
        a, b = spec["inputs"]
        return (f"esda::concat_module<{ca}, {cb}, {w}, {par['p']}>({ins[0]}, {ins[1]}, {out}, {_bg_name(a)}, "
                f"{_bg_name(b)}, {rescale[0]}, {rescale[1]});")
    if kind == "add":
        a, b = spec["inputs"]
        return (f"esda::add_module<{cin}, {w}, {par['p']}>({ins[0]}, {ins[1]}, {out}, {_bg_name(a)}, {_bg_name(b)}, "
                f"{n}_rqa, {n}_rqb, {n}_rq);")
    if kind == "gpool":
        return (f"esda::gpool_module<{cin}, {h}, {w}, {par['p']}>({ins[0]}, {out}, {_bg_name(spec['inputs'][0])}, "
                f"{spec['in_zero_point']}, {spec['multiplier']}LL, {spec['shift']}, {spec['zero_point']}, "
                f"{spec['qmin']}, {spec['qmax']});")
    if kind == "fc":
        src = spec["inputs"][0]
        c, sh, sw = by_stream[src]["out_shape"]
        return (f"esda::fc_module<{c}, {sh}, {sw}, {cout}, {par['pi']}, {par['po']}>({ins[0]}, {out}, {n}_w, "
                f"{n}_wzp, {len(spec['weight_zero_point'])}, {bias}, {spec['in_zero_point']}, {_bg_name(src)}, "
                f"{n}_rq);")
    raise SparseError(f"no C++ template for module kind {kind!r}")


#: Module fields that hold text (``None`` marks an absent entry, e.g. a concat input without rescale): names (C++ identifiers, checked), the kind and rounding (looked up),
#: and names from the model, which reach the C++ only through ``cpp_comment``/``cpp_string``.
_TEXT_FIELDS = {"name", "kind", "loc", "output", "inputs", "model_input", "acc", "weight", "bias",
                "rounding", "dtype"}


def _check_numbers(where: str, value) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in _TEXT_FIELDS:
                _check_numbers(f"{where}.{key}", item)
    elif isinstance(value, list):
        for item in value:
            _check_numbers(where, item)
    elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise SparseError(f"{where}: {value!r} is not a number; the artifact was not written by tcc")


def check_specs(meta: dict) -> None:
    """Every value the C++ is built from has its type: module names are C++ identifiers and every
    other non-text field is a number, so not even a hand-edited artifact can put code into top.cpp."""
    for spec in meta["modules"]:
        if not is_cpp_identifier(spec.get("name")) or spec.get("kind") not in KINDS:
            raise SparseError(f"module {spec.get('name')!r} of kind {spec.get('kind')!r}: not a module "
                              f"this tcc writes; the artifact was not written by tcc")
        _check_numbers(f"module {spec['name']}", spec)
    for fifo in meta["fifos"]:
        _check_numbers(f"fifo {fifo.get('src')!r} -> {fifo.get('dst')!r}: depth", fifo.get("depth"))


def top_source(artifact: SparseArtifact) -> str:
    meta = artifact.metadata
    check_specs(meta)
    modules, mode = meta["modules"], meta["mode"]
    for spec in modules:
        if spec["kind"] != "input" and spec.get("requant", {}).get("dtype", "i8") != "i8":
            raise SparseError(f"module {spec['name']}: the C++ templates stream int8 features, this module "
                              f"writes {spec['requant']['dtype']}")
    by_stream = {s["output"]: s for s in modules}
    readers: dict[str, list[str]] = {s["output"]: [] for s in modules}
    for s in modules:
        for i in s["inputs"]:
            readers[i].append(s["name"])
    channels = {s["output"]: s["out_shape"][0] for s in modules}
    sinks = [s for s in modules if not readers[s["output"]]]
    inputs = [s for s in modules if s["kind"] == "input"]
    lines = ["// generated by tcc (backends/sparse/hls.py): the dataflow top of "
             f"@{cpp_comment(meta['module_name'])}, mode {cpp_comment(mode)}, "
             f"target {cpp_comment(meta['target']['name'])}",
             '#include "esda_modules.hpp"', "#include <cstdio>", "", "namespace rom {"]
    for spec in modules:
        lines += _roms(spec, artifact.weights)
    lines += ["}  // namespace rom", "using namespace rom;", ""]
    params = [f"esda::Stream<{channels[s['output']]}>& s_{s['name']}" for s in inputs]
    params += [f"esda::Stream<{channels[s['output']]}>& s_{s['name']}" for s in sinks]
    lines += [f"void top({', '.join(params)}) {{", "#pragma HLS dataflow"]
    fifo_depth = {(f["src"], f["dst"]): f["depth"] for f in meta["fifos"]}
    taps: dict[tuple[str, str], str] = {}
    dups: dict[str, list[str]] = {}  # producer -> dup calls to run after it (the C++ run is sequential)

    def declare(c: int, stream: str, depth: int) -> None:
        lines.append(f"  esda::Stream<{c}> {stream};")
        lines.append(f"#pragma HLS stream variable = {stream} depth = {depth}")

    for s in modules:
        name = f"s_{s['name']}"
        c = channels[s["output"]]
        users = readers[s["output"]]
        if s not in inputs and s not in sinks:
            declare(c, name, fifo_depth[(s["name"], users[0])] if len(users) == 1 else FIFO_DEPTH_DEFAULT)
        src, dups[s["name"]] = name, []
        for k, user in enumerate(users):
            if k == len(users) - 1:
                taps[(s["name"], user)] = src
                break
            mine, rest = f"{name}_to_{user}", f"{name}_rest{k}"
            declare(c, mine, fifo_depth[(s["name"], user)])
            declare(c, rest, max(fifo_depth[(s["name"], u)] for u in users[k + 1:]))
            dups[s["name"]].append(f"  esda::dup_module<{c}>({src}, {mine}, {rest});")
            taps[(s["name"], user)] = mine
            src = rest
    for s in modules:
        if s["kind"] != "input":
            ins = [taps[(by_stream[i]["name"], s["name"])] for i in s["inputs"]]
            lines.append("  " + _call(s, ins, f"s_{s['name']}", mode, by_stream))
        lines += dups[s["name"]]
    lines += ["}", "", "#ifdef TCC_TESTBENCH", "int main() {"]
    for s in inputs + sinks:
        lines.append(f"  esda::Stream<{channels[s['output']]}> s_{s['name']};")
    for s in inputs:
        c = channels[s["output"]]
        lines += ["  {", "    int n = 0;", "    if (std::scanf(\"%d\", &n) != 1) return 1;",
                  "    for (int i = 0; i < n; ++i) {", f"      esda::Tok<{c}> t; int y, x;",
                  "      if (std::scanf(\"%d %d\", &y, &x) != 2) return 1;", "      t.y = y; t.x = x;",
                  f"      for (int c = 0; c < {c}; ++c) {{ int v; if (std::scanf(\"%d\", &v) != 1) return 1; "
                  f"t.f[c] = (int8_t)v; }}", f"      s_{s['name']}.write(t);", "    }",
                  f"    esda::end_frame(s_{s['name']});", "  }"]
    lines.append(f"  top({', '.join('s_' + s['name'] for s in inputs + sinks)});")
    for s in sinks:
        c = channels[s["output"]]
        lines += [f"  std::printf(\"stream %s\\n\", {cpp_string(s['output'])});",
                  f"  for (esda::Tok<{c}> t = s_{s['name']}.read(); !t.eof; t = s_{s['name']}.read()) {{",
                  "    std::printf(\"%d %d\", t.y, t.x);",
                  f"    for (int c = 0; c < {c}; ++c) std::printf(\" %d\", t.f[c]);",
                  "    std::printf(\"\\n\");", "  }"]
    lines += ["  return 0;", "}", "#endif", ""]
    return "\n".join(lines)


def emit_cpp(artifact: SparseArtifact, folder) -> Path:
    """Write esda_modules.hpp and top.cpp into ``folder``; returns the top's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    top = folder / "top.cpp"
    write_atomic(top, top_source(artifact))
    write_atomic(folder / HEADER.name, HEADER.read_bytes())
    return top
