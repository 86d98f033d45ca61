"""What an artifact's metadata holds, declared as data (``ir/schema.py``) and checked on load: the
overlay's inputs, outputs and layers; the sparse target's modules per kind and how their parts must
agree (streams, shapes, weights, per-channel parameters), so the token simulator never meets a
module it cannot run.  Part of the artifact layer: imports only ``tcc.ir``."""
from __future__ import annotations

from tcc.ir import Op, QuantParams, TensorType, Value, get_def
from tcc.ir.errors import TccError
from tcc.ir.numerics import INT32_MAX, INT32_MIN, ROUNDING_MODES, integer_range
from tcc.ir.opdef import normalize_attr

from tcc.ir.schema import STR, Int, List, Map, Nullable, Number, Record, Schema, SchemaError, check

INT = Int(INT32_MIN, INT32_MAX)  # every number the modules compute with is an int32 at most
NAT = Int(0, INT32_MAX)
POSITIVE = Int(1, INT32_MAX)
DTYPES = {"i8": (8, True), "u8": (8, False), "i32": (32, True)}


class _ZeroPoint:
    """An int, or a list of ints (per channel)."""

    def check(self, value, where: str) -> None:
        (List(INT) if isinstance(value, list) else INT).check(value, where)


class _Parallelism:
    """{"p": n} or {"pi": n, "po": n}, each at least 1."""

    def check(self, value, where: str) -> None:
        fields = {"pi": POSITIVE, "po": POSITIVE} if isinstance(value, dict) and "pi" in value else {"p": POSITIVE}
        Record(fields).check(value, where)


REQUANT = Record({"multiplier": List(Int(0, INT32_MAX)), "shift": List(Int(0, 63)), "zero_point": INT, "qmin": INT,
                  "qmax": INT, "rounding": STR, "pre_shift": Int(0, 31), "dtype": STR, "in_zero_point": _ZeroPoint()})
SHAPE = List(POSITIVE)
_COMMON: dict[str, Schema] = {"name": STR, "kind": STR, "loc": STR, "inputs": List(STR), "output": STR, "out_shape": SHAPE,
           "in_shape": SHAPE, "parallelism": _Parallelism(), "resources": Record({"dsp": NAT, "bram18": NAT, "lut": NAT}),
           "expected_cycles": NAT, "background": List(INT)}
_WINDOW: dict[str, Schema] = {"kernel": Int(1, 64), "stride": Int(1, 64), "pad": Int(0, 63)}
_WEIGHTED: dict[str, Schema] = {"weight": STR, "bias": Nullable(STR), "in_zero_point": INT, "weight_zero_point": List(INT),
             "requant": REQUANT, "acc": STR}
_POOL_REQUANT: dict[str, Schema] = {"in_zero_point": INT, "multiplier": Int(0, INT32_MAX), "shift": Int(0, 31), "zero_point": INT,
                 "qmin": INT, "qmax": INT}
MODULE_FIELDS: dict[str, dict[str, Schema]] = {
    "input": {"model_input": STR, "zero_point": INT},
    "conv": {**_WINDOW, **_WEIGHTED},
    "pointwise": {**_WINDOW, **_WEIGHTED},
    "depthwise": {**_WINDOW, **_WEIGHTED},
    "fc": _WEIGHTED,
    "maxpool": _WINDOW,
    "avgpool": {**_WINDOW, **_POOL_REQUANT, "pads": List(Int(0, 63)), "ceil_mode": Int(0, 1)},
    "gpool": _POOL_REQUANT,
    "add": {"requant": REQUANT, "requant_lhs": REQUANT, "requant_rhs": REQUANT, "fifo_tokens": NAT},
    "concat": {"rescale": List(Nullable(REQUANT)), "in_channels": List(POSITIVE), "fifo_tokens": NAT},
}
# The overlay: what the runtime reads.  The target's fields are TargetConfig's (checked with their
# ranges when a session opens).
_TYPE = Record({"shape": List(Int(min=0)), "dtype": STR},
               optional={"quant": Nullable(Record({"scale": List(Number()), "zero_point": List(INT)}))})
_BOUNDARY = Record({"kind": STR, "attrs": Record({}), "operand": _TYPE, "result": _TYPE})


class _Boundary:
    """None, one boundary op, or a chain of them (a list of two or more, in data-flow order)."""

    def check(self, value, where: str) -> None:
        if isinstance(value, list):
            if len(value) < 2:
                raise SchemaError(f"{where} is a chain of {len(value)} ops; a chain has two or more")
            List(_BOUNDARY).check(value, where)
        else:
            Nullable(_BOUNDARY).check(value, where)


_IO_ENTRY = Record({"name": STR, "value": STR, "address": Int(min=0), "shape": List(Int(min=0)), "dtype": STR,
                    "perm": List(Int(min=0)), "boundary": _Boundary()})
_LAYER = Record({"name": STR, "macs": Int(min=0), "min_bytes": Int(min=0)},
                optional={"kind": STR, "mode": STR, "live_bytes": Int(min=0), "weight_bytes": Int(min=0),
                          "weight_format": STR, "fused": List(STR)})
OVERLAY_METADATA = Record({"target": Record({}), "inputs": List(_IO_ENTRY), "outputs": List(_IO_ENTRY),
                           "layers": List(_LAYER), "dram_bytes": Int(min=0),
                           "activation_base": Int(min=0)},
                          optional={"model": STR, "format_version": Int(), "core_entries": List(Int(min=0))})
# The sparse target's budget as backends/sparse/target.py writes it (SparseTarget checks the ranges;
# the runtime and the listing divide by the clock).
_SPARSE_TARGET = Record({"name": STR, "clock_mhz": Number(positive=True), "dsp": POSITIVE, "bram36": POSITIVE, "lut": POSITIVE,
                         "max_parallelism": POSITIVE})
FIFO = Record({"src": STR, "dst": STR, "stream": STR, "width_bits": NAT, "depth": NAT})
METADATA = Record({
    "mode": STR, "module_name": STR, "target": _SPARSE_TARGET, "modules": List(Record({"kind": STR})),
    "fifos": List(FIFO), "host_ops": List(STR), "streams": Map(STR),
    "inputs": List(Record({"name": STR, "dtype": STR, "shape": List(NAT)})),
    "outputs": List(Record({"name": STR, "value": STR})),
    "dse": Record({"bottleneck_cycles": NAT, "dsp": NAT, "bram18": NAT, "lut": NAT}),
    "density_source": STR, "expected_counts": Map(List(NAT)),
})
_INPUT_COUNT = {"input": 0, "add": 2}


def check_overlay_metadata(meta, n_dram: int) -> None:
    """Raise SchemaError naming the first field of an overlay artifact's metadata that is wrong."""
    check(meta, OVERLAY_METADATA)
    if not n_dram <= meta["dram_bytes"] or not 0 <= meta["activation_base"] <= meta["dram_bytes"]:
        raise SchemaError(f"dram_bytes {meta['dram_bytes']} / activation_base {meta['activation_base']} do not "
                          f"fit the {n_dram}-byte DRAM image")
    for group in ("inputs", "outputs"):
        for entry in meta[group]:
            if not entry["address"] <= meta["dram_bytes"]:
                raise SchemaError(f"{group} entry {entry['name']!r}: address {entry['address']} is outside DRAM")


def check_sparse_metadata(meta: dict, weights: dict) -> None:
    """Raise SchemaError naming the first field of a sparse artifact's metadata the runtime could trip over."""
    check(meta, METADATA)
    if meta["mode"] not in ("exact", "submanifold"):
        raise SchemaError(f"mode is {meta['mode']!r}, not 'exact' or 'submanifold'")
    shapes: dict[str, list] = {}  # stream -> [C, H, W] of the module that produces it
    for i, spec in enumerate(meta["modules"]):
        where = f"modules[{i}]"
        if spec["kind"] not in MODULE_FIELDS:
            raise SchemaError(f"{where}.kind {spec['kind']!r} is not a module of the library "
                              f"({', '.join(MODULE_FIELDS)})")
        Record({**_COMMON, **MODULE_FIELDS[spec["kind"]]}).check(spec, where)
        _check_module(spec, weights, shapes, f"{where} ({spec['name']})")
        shapes[spec["output"]] = spec["out_shape"]
    names = {spec["name"] for spec in meta["modules"]}
    for i, fifo in enumerate(meta["fifos"]):
        for key in ("src", "dst"):
            if fifo[key] not in names:
                raise SchemaError(f"fifos[{i}].{key} names module {fifo[key]!r}, which does not exist")
    for name, stream in meta["streams"].items():
        if stream not in shapes:
            raise SchemaError(f"streams[{name!r}] names stream {stream!r}, which no module produces")


def _check_module(spec: dict, weights: dict, shapes: dict, where: str) -> None:
    kind, ins = spec["kind"], spec["inputs"]
    if len(spec["out_shape"]) != 3 or len(spec["in_shape"]) != 3:
        raise SchemaError(f"{where}: in_shape and out_shape must be [C, H, W]")
    (c, ho, wo), (cin, h, w) = spec["out_shape"], spec["in_shape"]
    expected = len(spec["in_channels"]) if kind == "concat" else _INPUT_COUNT.get(kind, 1)
    if len(ins) != expected or kind == "concat" and len(spec["rescale"]) != expected:
        raise SchemaError(f"{where}: a {kind} module takes {expected} input stream(s), got {len(ins)}")
    for j, name in enumerate(ins):
        if name not in shapes:
            raise SchemaError(f"{where}.inputs names stream {name!r}, which no earlier module produces")
        channels = spec["in_channels"][j] if kind == "concat" else cin
        if shapes[name] != [channels, h, w]:
            raise SchemaError(f"{where}: input stream {name!r} is {shapes[name]}, the module reads {[channels, h, w]}")
    if len(spec["background"]) != c:
        raise SchemaError(f"{where}: background has {len(spec['background'])} values for {c} channels")
    if kind in ("input", "add") and spec["in_shape"] != spec["out_shape"] \
            or kind in ("maxpool", "avgpool", "gpool", "depthwise") and cin != c \
            or kind == "concat" and (sum(spec["in_channels"]) != c or [h, w] != [ho, wo]) \
            or kind in ("gpool", "fc") and [ho, wo] != [1, 1]:
        raise SchemaError(f"{where}: out_shape {spec['out_shape']} does not follow from in_shape {spec['in_shape']}")
    if "kernel" in spec:
        _check_window(spec, where)
    if "weight" in spec:
        _check_weights(spec, weights, where)
    for key in ("requant", "requant_lhs", "requant_rhs"):
        if key in spec:
            _check_requant(spec[key], c, f"{where}.{key}")
    for j, rq in enumerate(spec.get("rescale", [])):
        if rq is not None:
            _check_requant(rq, spec["in_channels"][j], f"{where}.rescale[{j}]")
    if "qmin" in spec and not INT32_MIN <= spec["qmin"] <= spec["qmax"] <= INT32_MAX:
        raise SchemaError(f"{where}: qmin {spec['qmin']} > qmax {spec['qmax']}")


def _check_window(spec: dict, where: str) -> None:
    (_, ho, wo), (_, h, w) = spec["out_shape"], spec["in_shape"]
    k, s = spec["kernel"], spec["stride"]
    pads = spec.get("pads") or [spec["pad"]] * 4
    if len(pads) != 4 or spec["pad"] >= k or any(p >= k for p in pads):
        raise SchemaError(f"{where}: padding {pads} must be smaller than the {k}x{k} window")
    for size, out, before, after in ((h, ho, pads[0], pads[2]), (w, wo, pads[1], pads[3])):
        span = size + before + after - k
        if span < 0 or out not in (span // s + 1, -(-span // s) + 1):
            raise SchemaError(f"{where}: a {k}x{k} stride-{s} window over {size} with padding {before}+{after} "
                              f"does not give {out} outputs")


def _check_weights(spec: dict, weights: dict, where: str) -> None:
    kind, (c, _, _), (cin, h, w) = spec["kind"], spec["out_shape"], spec["in_shape"]
    for key in ("weight", "bias"):
        if spec.get(key) is not None and spec[key] not in weights:
            raise SchemaError(f"{where}.{key} names weight {spec[key]!r}, which the weight section lacks")
    shape = list(weights[spec["weight"]].shape)
    k = spec.get("kernel", 1)
    expected = {"fc": [c, cin * h * w], "depthwise": [c, 1, k, k]}.get(kind, [c, cin, k, k])
    if shape != expected and not (kind == "fc" and shape[:1] == [c] and weights[spec["weight"]].size == c * cin * h * w):
        raise SchemaError(f"{where}: weight {spec['weight']!r} is {shape}, the module needs {expected}")
    if spec.get("bias") is not None and list(weights[spec["bias"]].shape) != [c]:
        raise SchemaError(f"{where}: bias {spec['bias']!r} is {list(weights[spec['bias']].shape)}, the module "
                          f"needs [{c}]")
    if len(spec["weight_zero_point"]) not in (1, c):
        raise SchemaError(f"{where}: weight_zero_point has {len(spec['weight_zero_point'])} values for {c} channels")


def _check_requant(rq: dict, channels: int, where: str) -> None:
    if rq["dtype"] not in DTYPES:
        raise SchemaError(f"{where}.dtype {rq['dtype']!r} is not one of {', '.join(DTYPES)}")
    if rq["rounding"] not in ROUNDING_MODES:
        raise SchemaError(f"{where}.rounding {rq['rounding']!r} is not one of {', '.join(ROUNDING_MODES)}")
    if len(rq["multiplier"]) != len(rq["shift"]) or len(rq["multiplier"]) not in (1, channels):
        raise SchemaError(f"{where}: multiplier and shift need 1 or {channels} values each, got "
                          f"{len(rq['multiplier'])} and {len(rq['shift'])}")
    if isinstance(rq["in_zero_point"], list) and len(rq["in_zero_point"]) not in (1, channels):
        raise SchemaError(f"{where}.in_zero_point has {len(rq['in_zero_point'])} values for {channels} channels")
    lo, hi = integer_range(*DTYPES[rq["dtype"]])
    if not lo <= rq["qmin"] <= rq["qmax"] <= hi or not lo <= rq["zero_point"] <= hi:
        raise SchemaError(f"{where}: qmin {rq['qmin']}, qmax {rq['qmax']} and zero_point {rq['zero_point']} must lie "
                          f"in {rq['dtype']} [{lo}, {hi}] with qmin <= qmax")


# -- the ops at an overlay model's boundary (quantize an input, dequantize an output), as JSON ------
# They run on the host; carrying them in the metadata lets a session open without parsing the IR.
def type_json(t: TensorType) -> dict:
    q = t.quant
    return {"shape": list(t.shape), "dtype": t.dtype,
            "quant": None if q is None else {"scale": list(q.scale), "zero_point": list(q.zero_point),
                                             "axis": q.axis, "format": q.format}}


def boundary_json(op: Op) -> dict:
    """A one-operand, one-result op as JSON: kind, attributes, operand and result types."""
    attrs = {}
    for name, value in sorted(op.attrs.items()):
        if not isinstance(value, (str, int, float, bool, tuple)):
            raise TypeError(f"boundary op {op.kind}: attribute {name!r} = {value!r} is not a JSON value")
        attrs[name] = list(value) if isinstance(value, tuple) else value
    (operand,) = op.operands  # a boundary op has one operand and one result, whatever its kind
    return {"kind": op.kind, "attrs": attrs, "operand": type_json(operand.type), "result": type_json(op.result.type)}


def boundary_entry(ops: tuple[Op, ...] | list[Op]) -> dict | list[dict] | None:
    """An io entry's ``boundary``: None without conversions, one op's JSON, or the chain's (data-flow order)."""
    if not ops:
        return None
    return boundary_json(ops[0]) if len(ops) == 1 else [boundary_json(op) for op in ops]


def boundary_chain(entry) -> list[dict]:
    """The ops of an io entry's ``boundary`` (as ``boundary_entry`` writes it), in data-flow order."""
    return [] if entry is None else entry if isinstance(entry, list) else [entry]


def _type(desc: dict, where: str) -> TensorType:
    try:
        q = desc.get("quant")
        quant = None if q is None else QuantParams(tuple(float(s) for s in q["scale"]),
                                                   tuple(int(z) for z in q["zero_point"]), q.get("axis"),
                                                   q.get("format"))
        return TensorType(tuple(desc["shape"]), desc["dtype"], quant)
    except (ValueError, TypeError, KeyError) as exc:
        raise SchemaError(f"{where} is not a tensor type: {exc}") from None


def boundary_op(desc: dict, operand: str, result: str, where: str) -> Op:
    """The op of ``boundary_json`` reading a value named ``operand`` and producing ``result``;
    SchemaError saying what is wrong when the description is not a valid op."""
    kind = desc["kind"]
    try:
        opdef = get_def(kind)
    except (TccError, KeyError):
        raise SchemaError(f"{where}.kind {kind!r} is not an op kind") from None
    attrs = {}
    for name, value in desc["attrs"].items():
        spec = opdef.attr(name)
        if spec is None:
            raise SchemaError(f"{where}: {kind} has no attribute {name!r}")
        try:
            attrs[name] = normalize_attr(spec.kind, value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise SchemaError(f"{where}: attribute {name!r} of {kind}: {exc}") from None
    operand_type, result_type = _type(desc["operand"], f"{where}.operand"), _type(desc["result"], f"{where}.result")
    try:
        inferred = opdef.infer([operand_type], opdef.with_defaults(attrs))
    except (TccError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise SchemaError(f"{where}: {kind} does not apply to {operand_type}: {exc}") from None
    if [t.same_layout(result_type) for t in inferred] != [True]:
        raise SchemaError(f"{where}: {kind} of {operand_type} gives {', '.join(map(str, inferred))}, "
                          f"not {result_type}")
    return Op(kind, [Value(operand, operand_type)], [result_type], attrs, loc=where, result_names=[result])


def boundary_ops(entry, operand: str, result: str, where: str) -> list[Op]:
    """The ops of an io entry's ``boundary`` (``boundary_entry``), each reading what the one before
    makes: the first reads a value named ``operand``, the last makes ``result``.  SchemaError when a
    description is not a valid op or an op does not read the type the one before makes."""
    descs = boundary_chain(entry)
    ops: list[Op] = []
    for i, desc in enumerate(descs):
        at = where if len(descs) == 1 else f"{where}[{i}]"
        op = boundary_op(desc, ops[-1].result.name if ops else operand,
                         result if i == len(descs) - 1 else f"{result}.host{i}", at)
        (read,) = op.operands
        if ops and not read.type.same_layout(ops[-1].result.type):
            raise SchemaError(f"{at}: reads {read.type}, the op before makes {ops[-1].result.type}")
        ops.append(op)
    return ops
