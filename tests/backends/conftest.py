import types

import pytest


@pytest.fixture
def off_by_one_lsb(monkeypatch):
    """``break_rule(module, rule)``: give a simulator datapath module its own copy of the numerics
    namespace whose ``rule`` returns one LSB more (a class rule: whose instances do; a call given an
    ``out`` array it writes into gets it there); the reference interpreters keep the real rule."""
    from tcc.ir import numerics

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

    return break_rule
