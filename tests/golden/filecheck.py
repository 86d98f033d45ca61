"""A small FileCheck: match a tool's output against ``CHECK`` lines written in the input file.

Directives (in ``//`` comments, which the textual IR ignores):

- ``CHECK: pattern``      the next line at or after the current position containing the pattern;
- ``CHECK-NEXT: pattern`` the line right after the previous match contains it;
- ``CHECK-NOT: pattern``  no line between the previous match and the next one contains it (at the
  end of the list: no line after the previous match);
- ``CHECK-COUNT-n: pattern`` exactly n lines of the whole output contain it.

A pattern is literal text except ``{{regex}}`` parts, which are Python regular expressions.
Whitespace runs in the output and in literal text compare equal, as in LLVM's FileCheck.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_DIRECTIVE = re.compile(r"//\s*(CHECK(?:-NEXT|-NOT|-COUNT-\d+)?):(.*)$")


@dataclass(frozen=True)
class Check:
    kind: str  # CHECK, CHECK-NEXT, CHECK-NOT, CHECK-COUNT-n
    pattern: str
    line: int  # in the input file, 1-based

    def regex(self) -> re.Pattern:
        parts = re.split(r"\{\{(.*?)\}\}", " ".join(self.pattern.split()))
        return re.compile("".join(f"(?:{part})" if i % 2 else re.escape(part) for i, part in enumerate(parts)))


def read_checks(text: str) -> list[Check]:
    checks = []
    for number, line in enumerate(text.splitlines(), 1):
        found = _DIRECTIVE.search(line)
        if found:
            checks.append(Check(found.group(1), found.group(2), number))
    return checks


class CheckFailure(AssertionError):
    pass


def _normal(line: str) -> str:
    return " ".join(line.split())


def filecheck(output: str, checks: list[Check], source: str = "input") -> None:
    """Raise CheckFailure naming the directive (file:line) and showing the output near where it failed."""
    lines = [_normal(line) for line in output.splitlines()]
    position = 0  # index of the first line the next positive check may match
    last = -1  # index of the previous match
    pending_not: list[Check] = []

    def fail(check: Check, message: str, near: int) -> None:
        start = max(near - 3, 0)
        context = "\n".join(f"  {i + 1:5d}| {lines[i]}" for i in range(start, min(near + 4, len(lines))))
        raise CheckFailure(f"{source}:{check.line}: {check.kind}: {check.pattern.strip()!r} {message}\n"
                           f"output near line {near + 1}:\n{context}")

    def settle_nots(upto: int) -> None:
        for check in pending_not:
            regex = check.regex()
            for i in range(last + 1, upto):
                if regex.search(lines[i]):
                    fail(check, "matched", i)
        pending_not.clear()

    for check in checks:
        regex = check.regex()
        if check.kind == "CHECK-NOT":
            pending_not.append(check)
        elif check.kind.startswith("CHECK-COUNT-"):
            want = int(check.kind.rsplit("-", 1)[1])
            got = sum(1 for line in lines if regex.search(line))
            if got != want:
                fail(check, f"matched {got} lines, expected {want}", position)
        elif check.kind == "CHECK-NEXT":
            if last < 0:
                fail(check, "has no previous match to follow", 0)
            if last + 1 >= len(lines) or not regex.search(lines[last + 1]):
                fail(check, "is not on the line after the previous match", last + 1)
            settle_nots(last + 1)
            last, position = last + 1, last + 2
        else:
            found = next((i for i in range(position, len(lines)) if regex.search(lines[i])), None)
            if found is None:
                fail(check, "not found", position)
            settle_nots(found)
            last, position = found, found + 1
    settle_nots(len(lines))
