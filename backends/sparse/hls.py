"""The HLS design of a sparse dataflow artifact: streaming module templates and a generated top.

``emit_cpp(artifact, folder)`` writes

* ``esda_modules.hpp``: one streaming template per module kind (line buffers, occupancy maps,
  PIPELINE/UNROLL pragmas), and ``hls_shim/``: the ``hls::stream``/``ap_int`` subset for g++
  C-simulation where the vendor headers are absent (bounded FIFOs, a thread per module);
* ``top.cpp``: every module's ROMs (biases, requantization parameters, backgrounds; weights as
  below) and buffers, declared with the sizes and ``ARRAY_RESHAPE`` factors that the resource
  model charges (isa/tokensim/memories.py: one list sizes both), one ``hls::stream`` per FIFO of the
  design at the depth the compiler chose, and the module instances under ``#pragma HLS DATAFLOW``;
  compiled with ``-DTCC_TESTBENCH`` it gains a ``main`` that streams one frame's input tokens from
  stdin (``N``, then ``row col f0 f1 ...`` per token) and prints every sink stream's tokens;
* ``weights/<module>_w.inc``: each weight ROM's values (beat-major for conv/pointwise), comma
  separated.  Synthesis compiles them in as the ROM's initializer (``#include`` inside the braces);
  C-simulation reads the same files when ``top()`` first runs (hls4ml's ``weights/*.txt`` scheme), so
  g++ never parses millions of initializers and a ResNet-50 builds in bounded memory;
* ``run_hls.tcl``: the Vitis HLS flow (part and clock of the target, C-simulation, synthesis,
  co-simulation, IP export).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tcc.ir.escape import cpp_comment, cpp_string, is_cpp_identifier
from tcc.ir.fileio import write_atomic
from tcc.isa.tokensim.memories import has_line_buffer, lanes, module_memories, window_rows

from ..artifact import SparseArtifact
from .compile import stream_plan
from .errors import SparseError

HERE = Path(__file__).resolve().parent
HEADER = HERE / "esda_modules.hpp"
SHIM = HERE / "hls_shim"
KINDS = ("input", "conv", "pointwise", "depthwise", "maxpool", "avgpool", "concat", "add", "gpool", "fc")
ROUNDING = {"half_even": "esda::HALF_EVEN", "half_up": "esda::HALF_UP", "half_away": "esda::HALF_AWAY",
            "floor": "esda::FLOOR"}
#: Vitis part numbers of the bundled budgets.
PARTS = {"zcu102": "xczu9eg-ffvb1156-2-e", "u250": "xcu250-figd2104-2L-e"}


#: Where the weight ROM files go, beside top.cpp (``add_files -tb`` copies it for C-simulation).
ROM_DIR = "weights"
_VALUES_PER_LINE = 32


def _array(ctype: str, name: str, values) -> str:
    flat = np.asarray(values).reshape(-1)
    body = ", ".join(str(int(v)) for v in flat) if flat.size else "0"
    return f"static const {ctype} {name}[{max(flat.size, 1)}] = {{{body}}};"


def beat_major(weights: np.ndarray, pi: int, po: int) -> np.ndarray:
    """[COUT][CIN][K][K] -> [COUT/PO][CIN/PI][PO][PI][K][K]: the weights of one beat in one ROM word."""
    cout, cin = weights.shape[:2]
    w = weights.reshape(cout // po, po, cin // pi, pi, -1)
    return w.transpose(0, 2, 1, 3, 4).reshape(-1)


def _requant(lines: list[str], name: str, rq: dict) -> None:
    lines.append(_array("int32_t", f"{name}_mult", rq["multiplier"]))
    lines.append(_array("int32_t", f"{name}_shift", rq["shift"]))
    in_zp = np.atleast_1d(rq["in_zero_point"])
    lines.append(_array("int32_t", f"{name}_inzp", in_zp))
    if rq["rounding"] not in ROUNDING:
        raise SparseError(f"{name}: rounding {rq['rounding']!r} has no C++ template")
    lines.append(f"static const esda::Requant {name} = {{{name}_mult, {name}_shift, {len(rq['multiplier'])}, "
                 f"{rq['zero_point']}, {rq['qmin']}, {rq['qmax']}, {rq['pre_shift']}, {ROUNDING[rq['rounding']]}, "
                 f"{name}_inzp, {in_zp.size}}};")


def _roms(spec: dict, weights: dict) -> list[str]:
    n, kind = spec["name"], spec["kind"]
    lines = [f"// {n}: {cpp_comment(kind)} at {cpp_comment(spec['loc'])}"]
    lines.append(_array("int32_t", f"{n}_bg", spec["background"]))
    if "weight" in spec:
        lines += _rom_from_file("esda::weight_t", f"{n}_w", int(np.asarray(weights[spec["weight"]]).size))
        lines.append(_array("int32_t", f"{n}_wzp", spec["weight_zero_point"]))
        if spec.get("bias"):
            lines.append(_array("int32_t", f"{n}_b", weights[spec["bias"]]))
    if "requant" in spec:
        _requant(lines, f"{n}_rq", spec["requant"])
    for i, rq in enumerate(spec.get("rescale", [])):
        if rq is not None:
            _requant(lines, f"{n}_rs{i}", rq)
    if kind == "add":
        _requant(lines, f"{n}_rqa", spec["requant_lhs"])
        _requant(lines, f"{n}_rqb", spec["requant_rhs"])
    return lines


def _rom_from_file(ctype: str, name: str, count: int) -> list[str]:
    """A ROM initialised from ``weights/<name>.inc`` at synthesis and loaded from it in C-simulation."""
    return ["#ifdef __SYNTHESIS__", f"static const {ctype} {name}[{count}] = {{",
            f'#include "{ROM_DIR}/{name}.inc"', "};", "#else", f"static {ctype} {name}[{count}];", "#endif"]


def weight_roms(artifact: SparseArtifact) -> list[tuple[str, np.ndarray]]:
    """(ROM name, values in ROM order) of every ROM top.cpp reads from ``weights/``."""
    roms = []
    for spec in artifact.metadata["modules"]:
        if "weight" in spec:
            w = np.asarray(artifact.weights[spec["weight"]])
            if spec["kind"] in ("conv", "pointwise"):
                pi, po = lanes(spec, spec["parallelism"])
                w = beat_major(w, pi, po)
            roms.append((f"{spec['name']}_w", w.reshape(-1)))
    return roms


def rom_text(values: np.ndarray) -> str:
    """The body of a C initializer: the integers, comma separated, 32 to a line.  Each distinct
    value is formatted once (millions of int8 weights take few distinct values)."""
    flat = np.asarray(values).reshape(-1)
    if not flat.size:
        return ""
    distinct, index = np.unique(flat, return_inverse=True)
    ends = np.zeros(flat.size, bool)
    ends[_VALUES_PER_LINE - 1::_VALUES_PER_LINE] = True
    ends[-1] = True
    words = np.array([f"{int(v)}, " for v in distinct.tolist()] + [f"{int(v)},\n" for v in distinct.tolist()])
    return "".join(words[index.reshape(-1) + distinct.size * ends].tolist())


def _rom_loader(artifact: SparseArtifact) -> list[str]:
    """load_roms(): C-simulation fills the weight ROMs from their files once, before the first frame."""
    lines = ["#ifndef __SYNTHESIS__", "static void load_roms() {", "  static bool loaded = false;",
             "  if (loaded) return;"]
    lines += [f'  esda::load_rom({s["name"]}_w, {np.asarray(artifact.weights[s["weight"]]).size}, "{s["name"]}_w.inc");'
              for s in artifact.metadata["modules"] if "weight" in s]
    return lines + ["  loaded = true;", "}", "#endif"]


def _buffers(spec: dict) -> list[str]:
    """The module's read-write memories, at file scope (they outlive a call, as on chip)."""
    n, (cin, h, w) = spec["name"], spec["in_shape"]
    lines = []
    if has_line_buffer(spec):
        rows = window_rows(spec)
        lines.append(f"static esda::feat_t {n}_lb[{rows}][{w}][{cin}];")
        lines.append(f"static bool {n}_occ[{rows}][{w}];")
    if spec["kind"] == "gpool":
        lines.append(f"static ap_int<32> {n}_acc[{spec['out_shape'][0]}];")
    if spec["kind"] == "fc":
        lines.append(f"static esda::feat_t {n}_map[{cin * h * w}];")
    return lines


def _reshape_pragmas(spec: dict) -> list[str]:
    """One ARRAY_RESHAPE per memory with a factor above 1, named as memories.py names its role."""
    n = spec["name"]
    out = []
    for mem in module_memories(spec, spec["parallelism"]):
        if mem.stream_depth or mem.factor <= 1:
            continue
        dim = 3 if mem.role == "lb" else 1
        out.append(f"#pragma HLS ARRAY_RESHAPE variable = {n}_{mem.role} cyclic factor = {mem.factor} dim = {dim}")
    return out


def _call(spec: dict, ins: list[str], out: str, mode: str, by_stream: dict) -> str:
    """One module instance; a stream's background ROM is named after the module writing it."""
    n, kind, par = spec["name"], spec["kind"], spec["parallelism"]
    sub = str(mode == "submanifold").lower()

    def _bg_name(stream: str) -> str:
        return f"{by_stream[stream]['name']}_bg"

    cin, h, w = spec["in_shape"]
    cout, ho, wo = spec["out_shape"]
    bias = f"{n}_b" if spec.get("bias") else "nullptr"
    pi, po = lanes(spec, par)
    if kind == "pointwise" and not has_line_buffer(spec):
        return (f"esda::pointwise_module<{cin}, {cout}, {pi}, {po}>({ins[0]}, {out}, {n}_w, {n}_wzp, "
                f"{len(spec['weight_zero_point'])}, {bias}, {spec['in_zero_point']}, {n}_rq)")
    window = (f"{h}, {w}, {ho}, {wo}, {window_rows(spec) if has_line_buffer(spec) else 1}, {spec.get('kernel', 1)}, "
              f"{spec.get('stride', 1)}, {spec.get('pad', 0)}")
    if kind in ("conv", "pointwise", "depthwise"):
        src = spec["inputs"][0]
        pad_active = mode == "exact" and any(b != spec["in_zero_point"] for b in by_stream[src]["background"])
        return (f"esda::conv_module<{cin}, {cout}, {window}, {str(kind == 'depthwise').lower()}, {sub}, "
                f"{str(pad_active).lower()}, {pi}, {po}>({ins[0]}, {out}, {n}_lb, {n}_occ, {n}_w, {n}_wzp, "
                f"{len(spec['weight_zero_point'])}, {bias}, {spec['in_zero_point']}, {_bg_name(src)}, {n}_rq)")
    if kind == "maxpool":
        return (f"esda::maxpool_module<{cin}, {window}, {sub}, {par['p']}>({ins[0]}, {out}, {n}_lb, {n}_occ, "
                f"{_bg_name(spec['inputs'][0])})")
    if kind == "avgpool":
        return (f"esda::avgpool_module<{cin}, {window}, {sub}, {par['p']}>({ins[0]}, {out}, {n}_lb, {n}_occ, "
                f"{_bg_name(spec['inputs'][0])}, {spec['in_zero_point']}, {spec['multiplier']}LL, {spec['shift']}, "
                f"{spec['zero_point']}, {spec['qmin']}, {spec['qmax']})")
    if kind == "concat":
        branches = [f"esda::Branch<{c}>({tap}, {_bg_name(src)}, {f'&{n}_rs{i}' if rq is not None else 'nullptr'})"
                    for i, (c, tap, src, rq) in enumerate(zip(spec["in_channels"], ins, spec["inputs"],
                                                              spec["rescale"]))]
        return f"esda::concat_module<{cout}, {w}, {par['p']}>({out}, {', '.join(branches)})"
    if kind == "add":
        a, b = spec["inputs"]
        return (f"esda::add_module<{cin}, {w}, {par['p']}>({ins[0]}, {ins[1]}, {out}, {_bg_name(a)}, {_bg_name(b)}, "
                f"{n}_rqa, {n}_rqb, {n}_rq)")
    if kind == "gpool":
        return (f"esda::gpool_module<{cin}, {h}, {w}, {par['p']}>({ins[0]}, {out}, {n}_acc, "
                f"{_bg_name(spec['inputs'][0])}, {spec['in_zero_point']}, {spec['multiplier']}LL, {spec['shift']}, "
                f"{spec['zero_point']}, {spec['qmin']}, {spec['qmax']})")
    if kind == "fc":
        src = spec["inputs"][0]
        c, sh, sw = by_stream[src]["out_shape"]
        return (f"esda::fc_module<{c}, {sh}, {sw}, {cout}, {pi}, {po}>({ins[0]}, {out}, {n}_map, {n}_w, "
                f"{n}_wzp, {len(spec['weight_zero_point'])}, {bias}, {spec['in_zero_point']}, {_bg_name(src)}, "
                f"{n}_rq)")
    raise SparseError(f"no C++ template for module kind {kind!r}")


#: Module fields that hold text (``None`` marks an absent entry, e.g. a concat input without rescale):
#: names (C++ identifiers, checked), the kind and rounding (looked up), and names from the model,
#: which reach the C++ only through ``cpp_comment``/``cpp_string``.
_TEXT_FIELDS = {"name", "kind", "loc", "output", "inputs", "model_input", "acc", "weight", "bias",
                "rounding", "dtype", "stream"}


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
    plans = stream_plan(modules)
    channels = {s["name"]: s["out_shape"][0] for s in modules}
    read = {i for s in modules for i in s["inputs"]}
    sinks = [s for s in modules if s["output"] not in read]
    inputs = [s for s in modules if s["kind"] == "input"]
    ports = inputs + sinks
    lines = ["// generated by tcc (backends/sparse/hls.py): the dataflow top of "
             f"@{cpp_comment(meta['module_name'])}, mode {cpp_comment(mode)}, "
             f"target {cpp_comment(meta['target']['name'])}",
             '#include "esda_modules.hpp"', "#include <cstdio>", "", "namespace rom {"]
    for spec in modules:
        lines += _roms(spec, artifact.weights)
    lines += ["}  // namespace rom", "using namespace rom;", "", "// line buffers, occupancy maps, accumulators"]
    for spec in modules:
        lines += _buffers(spec)
    lines += ["", *_rom_loader(artifact)]
    params = [f"esda::Stream<{channels[s['name']]}>& s_{s['name']}" for s in ports]
    lines += ["", f"void top({', '.join(params)}) {{"]
    lines += [f"#pragma HLS INTERFACE axis port = s_{s['name']}" for s in ports]
    lines.append("#pragma HLS DATAFLOW")
    lines += ["#ifndef __SYNTHESIS__", "  load_roms();", "#endif"]
    for spec in modules:
        lines += _reshape_pragmas(spec)
    for spec in modules:
        for var, depth in plans[spec["name"]].declared:
            lines += [f"  esda::Stream<{channels[spec['name']]}> {var};",
                      f"#pragma HLS STREAM variable = {var} depth = {depth}", f"  ESDA_SET_DEPTH({var}, {depth});"]
    lines.append("  ESDA_DATAFLOW_BEGIN")
    for s in modules:
        if s["kind"] != "input":
            ins = [plans[by_stream[i]["name"]].taps[s["name"]] for i in s["inputs"]]
            call = _call(s, ins, "s_" + s["name"], mode, by_stream)
            lines.append(f"  ESDA_TASK({call})")
        for src, mine, rest in plans[s["name"]].dups:
            lines.append(f"  ESDA_TASK(esda::dup_module<{channels[s['name']]}>({src}, {mine}, {rest}))")
    lines += ["  ESDA_DATAFLOW_END", "}", ""]
    lines += _testbench(inputs, sinks, channels)
    return "\n".join(lines)


def _testbench(inputs: list[dict], sinks: list[dict], channels: dict) -> list[str]:
    """main(): one thread feeds each input stream from stdin, one drains each sink into text, the
    top runs meanwhile (with the vendor headers, one after the other, as Vitis C-simulation runs)."""
    lines = ["#ifdef TCC_TESTBENCH", "#include <cstring>", "#include <string>", "#ifndef ESDA_VENDOR", "#include <thread>", "#endif", "",
             "template <int C>", "static bool feed(esda::Stream<C>& s) {",
             "  int n = 0;", "  bool ok = std::scanf(\"%d\", &n) == 1;",
             "  for (int i = 0; ok && i < n; ++i) {", "    int y, x;",
             "    ok = std::scanf(\"%d %d\", &y, &x) == 2;", "    esda::Tok<C> t = esda::site<C>(y, x);",
             "    for (int c = 0; ok && c < C; ++c) { int v; ok = std::scanf(\"%d\", &v) == 1; t.f[c] = v; }",
             "    if (ok) s.write(t);", "  }", "  esda::end_frame(s);", "  return ok;", "}", "",
             "template <int C>", "static void drain(esda::Stream<C>& s, std::string& text) {",
             "  char buf[32];",
             "  for (esda::Tok<C> t = s.read(); !t.eof; t = s.read()) {",
             "    std::snprintf(buf, sizeof buf, \"%d %d\", (int)t.y, (int)t.x);", "    text += buf;",
             "    for (int c = 0; c < C; ++c) { std::snprintf(buf, sizeof buf, \" %d\", (int)t.f[c]); text += buf; }",
             "    text += '\\n';", "  }", "}", "",
             "// The resident-set high-water mark to stderr (Linux): what the line buffers and FIFOs cost.",
             "static void report_peak_memory() {",
             "  if (std::FILE* f = std::fopen(\"/proc/self/status\", \"r\")) {",
             "    char line[256];",
             "    while (std::fgets(line, sizeof line, f))",
             "      if (std::strncmp(line, \"VmHWM:\", 6) == 0) std::fprintf(stderr, \"peak memory: %s\", line + 6);",
             "    std::fclose(f);", "  }", "}", "", "int main() {"]
    for s in inputs + sinks:
        lines.append(f"  esda::Stream<{channels[s['name']]}> s_{s['name']};")
    lines += [f"  std::string text_{s['name']};" for s in sinks]
    lines.append("  bool ok = true;")
    args = ", ".join(f"s_{s['name']}" for s in inputs + sinks)
    lines += ["#ifdef ESDA_VENDOR"]
    lines += [f"  ok = feed(s_{s['name']}) && ok;" for s in inputs]
    lines += [f"  top({args});"]
    lines += [f"  drain(s_{s['name']}, text_{s['name']});" for s in sinks]
    lines += ["#else", "  {", "    hls::tasks io;"]
    lines += [f"    io.run([&] {{ drain(s_{s['name']}, text_{s['name']}); }});" for s in sinks]
    lines += ["    io.run([&] {"] + [f"      ok = feed(s_{s['name']}) && ok;" for s in inputs] + ["    });"]
    lines += [f"    top({args});", "  }", "#endif"]
    for s in sinks:
        lines += [f"  std::printf(\"stream %s\\n\", {cpp_string(s['output'])});",
                  f"  std::fputs(text_{s['name']}.c_str(), stdout);"]
    lines += ["  report_peak_memory();", "  return ok ? 0 : 1;", "}", "#endif", ""]
    return lines


def tcl_script(artifact: SparseArtifact) -> str:
    """run_hls.tcl: Vitis HLS C-simulation, synthesis, co-simulation and IP export at the target's
    part and clock (``vitis_hls -f run_hls.tcl`` beside top.cpp and a token file ``tokens.txt``)."""
    target = artifact.metadata["target"]
    part = next((p for key, p in PARTS.items() if key in target["name"].lower()), PARTS["zcu102"])
    period = 1000.0 / float(target["clock_mhz"])
    return "\n".join([
        f"# generated by tcc: the Vitis HLS flow of the sparse design, target {cpp_comment(target['name'])}",
        "open_project -reset esda_prj",
        "set_top top",
        "add_files top.cpp",
        "add_files esda_modules.hpp",
        'add_files -tb top.cpp -cflags "-DTCC_TESTBENCH"',
        "add_files -tb tokens.txt",
        f"add_files -tb {ROM_DIR}",
        "open_solution -reset sol -flow_target vivado",
        f"set_part {{{part}}}",
        f"create_clock -period {period:.3f} -name default",
        "csim_design -argv {< tokens.txt}",
        "csynth_design",
        "cosim_design -argv {< tokens.txt}",
        "export_design -format ip_catalog",
        "exit", ""])


def emit_cpp(artifact: SparseArtifact, folder) -> Path:
    """Write top.cpp, esda_modules.hpp, hls_shim/, weights/ and run_hls.tcl into ``folder``; returns
    the top's path."""
    folder = Path(folder)
    (folder / SHIM.name).mkdir(parents=True, exist_ok=True)
    for name, values in weight_roms(artifact):
        write_atomic(folder / ROM_DIR / f"{name}.inc", rom_text(values))
    top = folder / "top.cpp"
    write_atomic(top, top_source(artifact))
    write_atomic(folder / HEADER.name, HEADER.read_bytes())
    for header in sorted(SHIM.glob("*.h")):
        write_atomic(folder / SHIM.name / header.name, header.read_bytes())
    write_atomic(folder / "run_hls.tcl", tcl_script(artifact))
    return top
