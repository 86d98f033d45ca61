"""The golden tests' checker fails where it should, naming the directive's line."""
import pytest

from filecheck import CheckFailure, filecheck, read_checks

OUTPUT = "a = conv(x)\nb = relu(a)\nc = add(b, b)\noutput c\n"


def check(directives: str) -> None:
    filecheck(OUTPUT, read_checks(directives), "t.tir")


def test_passing_directives():
    check("// CHECK: conv(\n// CHECK-NEXT: relu({{[a-z]}})\n// CHECK-NOT: mul\n// CHECK: output  c\n"
          "// CHECK-COUNT-2: b\n// CHECK-COUNT-0: sigmoid")


@pytest.mark.parametrize("directives,message", [
    ("// CHECK: relu\n// CHECK: conv", r"t.tir:2: CHECK: 'conv' not found"),
    ("// CHECK: conv\n// CHECK-NEXT: add", r"t.tir:2: CHECK-NEXT: 'add' is not on the line after"),
    ("// CHECK: conv\n// CHECK-NOT: relu\n// CHECK: add", r"t.tir:2: CHECK-NOT: 'relu' matched"),
    ("// CHECK: relu\n// CHECK-NOT: output", r"t.tir:2: CHECK-NOT: 'output' matched"),
    ("// CHECK-COUNT-1: b", r"matched 2 lines, expected 1"),
])
def test_failures_name_the_directive(directives, message):
    with pytest.raises(CheckFailure, match=message):
        check(directives)
