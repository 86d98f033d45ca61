"""The IR object model: a Module holds an ordered graph of Ops over SSA Values.

Values are objects, not names: an operand points at the Value that produced it and every
Value keeps the list of ops using it, so rewrites never look edges up by string.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from .attributes import Attributes
from .errors import VerifyError
from .host_tail import HostTail
from .types import TensorType

# One Op subclass per registered op kind, carrying its definition and named accessors
# (ir/opdef.py's define_op fills this); Op(kind, ...) builds an instance of the kind's class.
OP_CLASSES: dict[str, type["Op"]] = {}


class Value:
    """One SSA value: a module input or the result of an op."""

    __slots__ = ("name", "type", "producer", "uses")

    def __init__(self, name: str, type: TensorType, producer: "Op | None" = None):
        self.name = name
        self.type = type
        self.producer = producer
        self.uses: list[Op] = []  # one entry per operand slot that reads this value

    @property
    def users(self) -> list["Op"]:
        """Distinct ops reading this value, in first-use order."""
        seen: dict[int, Op] = {}
        for op in self.uses:
            seen.setdefault(id(op), op)
        return list(seen.values())

    def replace_all_uses_with(self, new: "Value") -> None:
        for op in list(self.users):
            op.operands = [new if v is self else v for v in op.operands]
        if self.producer is not None and self.producer.module is not None:
            self.producer.module.replace_output_value(self, new)

    def __repr__(self) -> str:
        return f"<Value %{self.name}: {self.type}>"


class Op:
    """One operation: kind, operands, results, attributes and the location it came from.

    ``Op(kind, ...)`` makes an instance of the kind's class (``OP_CLASSES``), which adds read-only
    accessors named by the op definition: operands (``conv.x``, ``conv.w``, ``conv.b`` -- None when
    an optional operand is absent, a list for a variadic one) and attributes (``conv.strides``).
    Attribute values are frozen and checked against the definition as they are set.
    """

    __slots__ = ("kind", "_operands", "results", "attrs", "loc", "module")
    definition: Any = None  # the kind's OpDef (set on each kind's class), None for an unknown kind

    def __new__(cls, kind: str = "", *args, **kwargs):
        if cls is Op:
            cls = OP_CLASSES.get(kind, Op)
        return object.__new__(cls)

    def __init__(self, kind: str, operands: Iterable[Value], result_types: Iterable[TensorType],
                 attrs: dict | None = None, loc: str = "", result_names: Iterable[str] | None = None):
        self.kind = kind
        self._operands: list[Value] = []
        definition = self.definition
        try:
            self.attrs = Attributes(definition.attr if definition is not None else None, kind, attrs or {})
        except (KeyError, TypeError) as exc:
            where = f" (loc {loc!r})" if loc else ""
            raise VerifyError(f"{exc.args[0]}{where}") from None
        self.loc = loc
        self.module: Module | None = None
        names = list(result_names) if result_names is not None else None
        self.results = [Value(names[i] if names else "", t, self) for i, t in enumerate(result_types)]
        self.operands = list(operands)

    @property
    def operands(self) -> list[Value]:
        return list(self._operands)

    @operands.setter
    def operands(self, values: list[Value]) -> None:
        for v in self._operands:
            v.uses.remove(self)
        self._operands = list(values)
        for v in self._operands:
            v.uses.append(self)

    @property
    def result(self) -> Value:
        if len(self.results) != 1:
            raise ValueError(f"op {self.kind} has {len(self.results)} results, not one")
        return self.results[0]

    def drop_operands(self) -> None:
        self.operands = []

    def has_trait(self, trait) -> bool:
        """Whether the op's kind declares ``trait`` (an ir.traits.Trait)."""
        return self.definition is not None and trait in self.definition.traits

    def __getattr__(self, name: str) -> Any:
        # Only reached for a name that is neither a slot nor one of the kind's accessors.
        if name.startswith("_") or name in Op.__slots__:
            raise AttributeError(name)
        raise AttributeError(f"op {self.kind} has no operand or attribute {name!r}")

    def __repr__(self) -> str:
        return f"<Op {self.kind} loc={self.loc!r}>"


class Module:
    """A function-like graph: named inputs, ops in topological order, named outputs."""

    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self.ops: list[Op] = []
        self.outputs: list[tuple[str, Value]] = []  # (user-visible output name, value)
        # The ops whose shapes are known only at run time, kept as ONNX (host_tail.py); None: none.
        self.host_tail: HostTail | None = None
        self._taken: set[str] = set()

    # -- names -------------------------------------------------------------------------------
    def fresh_name(self, hint: str = "v") -> str:
        """A value name not used in this module yet (not reserved), deterministic given its history."""
        base = hint or "v"
        if base not in self._taken:
            return base
        i = 1
        while f"{base}.{i}" in self._taken:
            i += 1
        return f"{base}.{i}"

    def claim_name(self, name: str) -> None:
        if name in self._taken:
            raise ValueError(f"value name %{name} defined twice")
        self._taken.add(name)

    def rename(self, value: "Value", name: str) -> None:
        """Give a value a new (unused) name."""
        if name == value.name:
            return
        self.claim_name(name)
        self._taken.discard(value.name)
        value.name = name

    # -- building ----------------------------------------------------------------------------
    def add_input(self, name: str, type: TensorType) -> Value:
        self.claim_name(name)
        v = Value(name, type)
        self.inputs.append(v)
        return v

    def insert_op(self, op: Op, index: int | None = None) -> Op:
        for r in op.results:
            if not r.name:
                r.name = self.fresh_name(op.kind)
            self.claim_name(r.name)
        op.module = self
        if index is None:
            self.ops.append(op)
        else:
            self.ops.insert(index, op)
        return op

    def add_output(self, name: str, value: Value) -> None:
        self.outputs.append((name, value))

    def replace_output_value(self, old: Value, new: Value) -> None:
        self.outputs = [(n, new if v is old else v) for n, v in self.outputs]

    def erase_op(self, op: Op) -> None:
        for r in op.results:
            if r.uses or self.is_output(r):
                raise ValueError(f"cannot erase {op.kind} at {op.loc!r}: its result %{r.name} is still used")
            self._taken.discard(r.name)
        op.drop_operands()
        self.ops.remove(op)
        op.module = None

    def take_body(self, other: "Module") -> None:
        """Replace this module's inputs, ops and outputs by ``other``'s (which is left empty).

        For passes that rebuild a module wholesale: the caller's Module object stays the same.
        """
        self.inputs, self.ops, self.outputs, self._taken = other.inputs, other.ops, other.outputs, other._taken
        for op in self.ops:
            op.module = self
        other.inputs, other.ops, other.outputs, other._taken = [], [], [], set()

    # -- queries -----------------------------------------------------------------------------
    def values(self) -> Iterator[Value]:
        yield from self.inputs
        for op in self.ops:
            yield from op.results

    def index_of(self, op: Op) -> int:
        for i, candidate in enumerate(self.ops):
            if candidate is op:
                return i
        raise ValueError(f"{op!r} is not in module {self.name}")

    def is_output(self, value: Value) -> bool:
        return any(v is value for _, v in self.outputs)

    def output_values(self) -> list[Value]:
        return [v for _, v in self.outputs]

    def sort_topologically(self) -> None:
        """Reorder ops so every operand is defined before use, keeping the current order where legal."""
        position = {id(op): i for i, op in enumerate(self.ops)}
        pending = {id(op): sum(1 for v in set(op.operands) if v.producer is not None) for op in self.ops}
        import heapq

        ready = [(position[id(op)], op) for op in self.ops if pending[id(op)] == 0]
        heapq.heapify(ready)
        ordered: list[Op] = []
        while ready:
            _, op = heapq.heappop(ready)
            ordered.append(op)
            for r in op.results:
                for user in r.users:
                    pending[id(user)] -= 1
                    if pending[id(user)] == 0:
                        heapq.heappush(ready, (position[id(user)], user))
        if len(ordered) != len(self.ops):
            raise ValueError("the graph has a cycle")
        self.ops = ordered
