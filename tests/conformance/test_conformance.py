"""ONNX's conformance cases against tcc's float path; expected.toml says which must pass.

A listed case that fails, or a passing case that is not listed, fails: the list only grows
(``python bench/conformance.py --update`` rewrites it).  Cases out of scope are skipped with
their reason; other failing cases are expected failures showing why they fail.  With
``--quant int8`` the same holds for the int8 list, and an int8 miss is acceptable only when
expected.toml's ``int8_wrong`` explains it.

    python -m pytest tests/conformance -k resize      # one op's cases
    python -m pytest tests/conformance --quant int8   # through the int8 quantizer
"""
from __future__ import annotations

import pytest

import conformance_cases as cc
import expectations

CASES = cc.all_cases()
EXPECTED = expectations.read()


@pytest.mark.parametrize("name", list(CASES))
def test_case(name, request):
    case = CASES[name]
    if name in EXPECTED.out_of_scope:
        pytest.skip(f"out of scope: {EXPECTED.out_of_scope[name]}")
    quant = request.config.getoption("--quant", default=None)  # registered only when run from here
    listed, explained = (EXPECTED.int8_passing, EXPECTED.int8_wrong) if quant else (EXPECTED.passing, {})
    outcome = cc.run_case(case, quant)
    path = quant or "float"
    if name in listed:
        assert outcome.status == cc.PASS, f"{name} is listed as passing ({path}) but is {outcome.status}: {outcome.detail}"
        return
    assert outcome.status != cc.PASS, f"{name} passes ({path}): add it to tests/conformance/expected.toml"
    if outcome.status == cc.WRONG:
        if name in explained:
            pytest.xfail(f"{path}: {outcome.detail} ({explained[name]})")
        pytest.fail(f"wrong result ({path}; never acceptable unexplained): {outcome.detail}")
    pytest.xfail(f"{path}: {outcome.status}: {outcome.detail}")


def test_expectations_name_real_cases():
    """Every listed name is a case, none is both passing and out of scope, the int8 list is within the
    float list, and the scope reasons in the file are those the classifier gives."""
    listed = EXPECTED.passing | EXPECTED.int8_passing | set(EXPECTED.int8_wrong) | set(EXPECTED.out_of_scope)
    assert not (listed - set(CASES)), f"unknown cases listed: {sorted(listed - set(CASES))[:10]}"
    assert not (EXPECTED.passing & set(EXPECTED.out_of_scope))
    assert not (EXPECTED.int8_passing - EXPECTED.passing), "an int8 pass the float path does not have"
    assert not (EXPECTED.int8_passing & set(EXPECTED.int8_wrong))
    computed = {n: r for n, c in CASES.items() if (r := cc.out_of_scope_reason(c))}
    assert computed == EXPECTED.out_of_scope
