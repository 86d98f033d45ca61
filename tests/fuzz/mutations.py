"""Input mutations for fuzzing: generic byte edits, and structure-aware ONNX model edits (huge dims,
cycles, missing initializers, wrong attribute and element types) that random bytes rarely reach."""
from __future__ import annotations

import random

INTERESTING_NUMBERS = [b"0", b"-1", b"1", b"255", b"65536", b"2147483648", b"-2147483649", b"99999999999999999999",
                       b"1e308", b"nan", b"inf", b"0x7fffffffffffffff", b"1099511627776"]


def mutate_bytes(data: bytes, rng: random.Random, pool: list[bytes] = ()) -> bytes:
    """One to four random edits of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(9)
        n = len(out)
        if choice == 0 and n:  # flip a bit
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        elif choice == 1 and n:  # truncate
            del out[rng.randrange(n):]
        elif choice == 2 and n:  # delete a chunk
            i = rng.randrange(n)
            del out[i:i + rng.randint(1, 64)]
        elif choice == 3:  # insert random bytes
            i = rng.randrange(n + 1)
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif choice == 4 and n:  # duplicate a chunk
            i = rng.randrange(n)
            chunk = out[i:i + rng.randint(1, 256)]
            j = rng.randrange(n + 1)
            out[j:j] = chunk
        elif choice == 5 and n:  # replace a digit run with an interesting number
            digits = [i for i in range(n) if 48 <= out[i] <= 57]
            if digits:
                i = rng.choice(digits)
                j = i
                while j < n and 48 <= out[j] <= 57:
                    j += 1
                out[i:j] = rng.choice(INTERESTING_NUMBERS)
        elif choice == 6 and pool:  # splice with another input
            other = rng.choice(pool)
            if other:
                i, j = rng.randrange(n + 1), rng.randrange(len(other))
                out = out[:i] + bytearray(other[j:j + rng.randint(1, 512)]) + out[i:]
        elif choice == 7 and n:  # swap two lines
            lines = bytes(out).split(b"\n")
            if len(lines) > 2:
                a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[a], lines[b] = lines[b], lines[a]
                out = bytearray(b"\n".join(lines))
        elif choice == 8 and n:  # set a byte to a boundary value
            out[rng.randrange(n)] = rng.choice([0, 0x7F, 0x80, 0xFF, ord('"'), ord("%"), ord("{"), ord("\n")])
    return bytes(out)


def mutate_onnx(data: bytes, rng: random.Random) -> bytes:
    """A structural edit of a serialized ONNX model (falls back to byte edits if it does not parse)."""
    import onnx
    from onnx import AttributeProto, TensorProto

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:
        return mutate_bytes(data, rng)
    graph = model.graph
    choice = rng.randrange(9)
    if choice == 0 and len(graph.input):  # a huge or zero input dim
        dims = graph.input[rng.randrange(len(graph.input))].type.tensor_type.shape.dim
        if len(dims):
            dims[rng.randrange(len(dims))].dim_value = rng.choice([0, 2**31, 2**40, 2**62])
    elif choice == 1 and len(graph.node) > 1:  # a cycle: an early node reads a later node's output
        a, b = sorted(rng.sample(range(len(graph.node)), 2))
        if len(graph.node[a].input) and len(graph.node[b].output):
            graph.node[a].input[0] = graph.node[b].output[0]
    elif choice == 2 and len(graph.initializer):  # a missing initializer
        del graph.initializer[rng.randrange(len(graph.initializer))]
    elif choice == 3:  # an attribute of the wrong type
        nodes = [n for n in graph.node if len(n.attribute)]
        if nodes:
            attr = rng.choice(nodes).attribute
            a = attr[rng.randrange(len(attr))]
            kind = rng.choice([AttributeProto.FLOAT, AttributeProto.INT, AttributeProto.STRING, AttributeProto.INTS])
            a.Clear()
            a.name = rng.choice(["kernel_shape", "strides", "pads", "axis", "perm", "group", "dilations"])
            a.type = kind
            if kind == AttributeProto.FLOAT:
                a.f = rng.choice([1.5, -1e30, float("nan")])
            elif kind == AttributeProto.INT:
                a.i = rng.choice([0, -1, 2**40])
            elif kind == AttributeProto.STRING:
                a.s = b"\xff\xfe"
            else:
                a.ints.extend([rng.choice([0, -5, 2**33]) for _ in range(rng.randint(0, 5))])
    elif choice == 4 and len(graph.initializer):  # an initializer of a wrong or huge declared shape
        t = graph.initializer[rng.randrange(len(graph.initializer))]
        if len(t.dims):
            t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 3, 2**40])
    elif choice == 5:  # a wrong element type
        targets = list(graph.input) + list(graph.output)
        if targets:
            rng.choice(targets).type.tensor_type.elem_type = rng.choice(
                [TensorProto.STRING, TensorProto.INT8, TensorProto.COMPLEX64, 0, 999])
        elif len(graph.initializer):
            graph.initializer[0].data_type = TensorProto.INT64
    elif choice == 6 and len(graph.node):  # an unknown or renamed input
        node = graph.node[rng.randrange(len(graph.node))]
        if len(node.input):
            node.input[rng.randrange(len(node.input))] = rng.choice(["", "nowhere", node.output[0] if node.output else "x"])
    elif choice == 7 and len(graph.node):  # a duplicated or dropped node
        i = rng.randrange(len(graph.node))
        if rng.random() < 0.5:
            graph.node.add().CopyFrom(graph.node[i])
        else:
            del graph.node[i]
    else:  # opset or IR version out of range
        if len(model.opset_import):
            model.opset_import[0].version = rng.choice([0, 1, 6, 99, 2**40])
        else:
            model.ir_version = rng.choice([0, 1, 99])
    return model.SerializeToString()


JSON_VALUES = [None, True, -1, 0, 2**31, 2**63, -(2**40), 1.5, float("nan"), "", "x", [], [1], {}, {"p": 0}]


def mutate_json(data: bytes, rng: random.Random) -> bytes:
    """A structural edit of a JSON document (artifact metadata): one field deleted, replaced by a value
    of another kind or an extreme number, or a list item dropped or duplicated (falls back to byte
    edits if it does not parse)."""
    import json

    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return mutate_bytes(data, rng)
    containers = []

    def walk(node):
        if isinstance(node, dict) and node:
            containers.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list) and node:
            containers.append(node)
            for value in node:
                walk(value)

    walk(doc)
    if not containers:
        return mutate_bytes(data, rng)
    node = rng.choice(containers)
    key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
    choice = rng.randrange(4)
    if choice == 0:
        del node[key]
    elif choice == 1 and isinstance(node, list):
        node.insert(key, node[key])
    else:
        node[key] = rng.choice(JSON_VALUES)
    return json.dumps(doc).encode()
