import types

import pytest

# (simulator module, numerics rule) -> the C kernels computing that rule there; the argument each writes
_NATIVE = {("impl_quant", "Requantizer"): ("requant", "requant_wide"),
           ("impl_quant", "AffineRequantizer"): ("requant", "requant_wide"),
           ("impl_quant", "row_shifted"): ("requant",), ("impl_vector", "int8_to_bf16"): ("cvt_i32",)}
_NATIVE_OUT = {"requant": 1, "requant_wide": 1, "cvt_i32": 0}


@pytest.fixture
def off_by_one_lsb(monkeypatch):
    """``break_rule(module, rule)``: give a simulator datapath module its own copy of the numerics
    namespace whose ``rule`` returns one LSB more (a class rule: whose instances do; a call given an
    ``out`` array it writes into gets it there); the reference interpreters keep the real rule.
    Where the simulator runs the rule in a C kernel (isa/simulator/native.py), that kernel's output
    gets the LSB too (its ``out`` argument, after the call)."""
    from tcc.ir import numerics
    from tcc.isa.simulator import native

    def break_kernel(module, rule: str) -> None:
        kernels = native.kernels()
        names = _NATIVE.get((module.__name__.rsplit(".", 1)[-1], rule))
        if kernels is None or names is None:
            return

        def breaking(name: str):
            real, at = getattr(kernels, name), _NATIVE_OUT[name]

            def broken(*args):
                done = real(*args)
                if done is not False:
                    args[at][...] += 1
                return done

            return broken

        def step(kind, *operands):  # a requant or eadd step would run the unbroken stage: refused, so the broken one runs
            if "requant" in names and kind in (kernels.STEP_REQUANT, kernels.STEP_EADD):
                raise ValueError("a broken requant kernel")
            return kernels.step(kind, *operands)

        monkeypatch.setattr(native, "kernels", lambda: types.SimpleNamespace(
            **{**vars(kernels), **{n: breaking(n) for n in names}, "step": step}))

    def one_more(result, args):
        if len(args) > 1 and args[-1] is result:  # written into the caller's ``out``
            result += 1
            return result
        return result + 1

    def break_rule(module, rule: str) -> None:
        real = getattr(numerics, rule)
        broken = types.SimpleNamespace(**vars(numerics))
        if isinstance(real, type):
            setattr(broken, rule, type(rule, (real,), {"__call__": lambda self, *a: one_more(real.__call__(self, *a), a)}))
        else:
            setattr(broken, rule, lambda *args, **kwargs: real(*args, **kwargs) + 1)
        monkeypatch.setattr(module, "numerics", broken)
        break_kernel(module, rule)

    return break_rule
