"""ONNX's conformance cases against tcc's float path; expected.toml says which must pass.

A listed case that fails, or a passing case that is not listed, fails: the list only grows
(``python bench/conformance.py --update`` rewrites it).  Cases out of scope are skipped with
their reason; other failing cases are expected failures showing why they fail.

    python -m pytest tests/conformance -k resize      # one op's cases
"""
from __future__ import annotations

import pytest

import conformance_cases as cc

CASES = cc.all_cases()
PASSING, OUT_OF_SCOPE = cc.expectations()


@pytest.mark.parametrize("name", list(CASES))
def test_case(name):
    case = CASES[name]
    if name in OUT_OF_SCOPE:
        pytest.skip(f"out of scope: {OUT_OF_SCOPE[name]}")
    outcome = cc.run_case(case)
    if name in PASSING:
        assert outcome.status == cc.PASS, f"{name} is listed as passing but is {outcome.status}: {outcome.detail}"
        return
    assert outcome.status != cc.PASS, f"{name} passes: add it to tests/conformance/expected.toml"
    if outcome.status == cc.WRONG:
        pytest.fail(f"wrong result (never acceptable): {outcome.detail}")
    pytest.xfail(f"{outcome.status}: {outcome.detail}")


def test_expectations_name_real_cases():
    """Every listed name is a case, none is both passing and out of scope, and the scope
    reasons in the file are those the classifier gives."""
    assert not (PASSING - set(CASES)), f"unknown cases listed: {sorted(PASSING - set(CASES))[:10]}"
    assert not (set(OUT_OF_SCOPE) - set(CASES))
    assert not (PASSING & set(OUT_OF_SCOPE))
    computed = {n: r for n, c in CASES.items() if (r := cc.out_of_scope_reason(c))}
    assert computed == OUT_OF_SCOPE
