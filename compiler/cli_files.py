"""The files a command reads and writes, declared by the types of its options.

``FileCommand`` checks them once, before the command does any work: no output path is empty, none
names an input (the same file by ``os.path.samefile``, or the same resolved path) or another
output, and ``-`` (standard output) only where the format allows it.  How an output is then
written (atomically, or through to a device, FIFO or link target) is ``tcc.ir.fileio``'s rule.
"""
from __future__ import annotations

import os
import re
import stat
import sys

import click

STDOUT = "-"  # tcc.ir.fileio's name for standard output (a test checks they agree); not imported: `tcc --help` stays light


class InputFile(click.Path):
    """A file (or, with ``dir_okay``, a folder) the command reads."""

    def __init__(self, dir_okay: bool = False):
        super().__init__(dir_okay=dir_okay)


class OutputFile(click.ParamType):
    """A file the command writes.  ``stdout``: None if ``-`` is not allowed, "text" or "binary"
    (binary output is refused when standard output is a terminal)."""

    name = "file"

    def __init__(self, stdout: str | None = None):
        self.stdout = stdout


class OutputFolder(click.Path):
    """A folder the command writes the files ``names`` into, or (``pattern``: a regular expression and
    how to say it to a user) files whose names are not known before the command runs but match it.
    ``written_with``: the option without which nothing is written into the folder, and with which
    the current folder is written when this option is absent."""

    def __init__(self, names: tuple[str, ...] = (), pattern: tuple[re.Pattern, str] | None = None,
                 written_with: str | None = None):
        super().__init__(file_okay=False)
        self.names, self.pattern, self.written_with = names, pattern, written_with


class FileCommand(click.Command):
    def invoke(self, ctx: click.Context):
        check_files(self.params, ctx.params)
        return super().invoke(ctx)


def _label(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        return param.human_readable_name
    return max(param.opts, key=len)


def check_files(params, values: dict) -> None:
    """Raise UsageError when the declared outputs clash with the inputs or each other."""
    from tcc.model_io import UsageError

    inputs: list[tuple[str, str]] = []
    outputs: list[tuple[str, str]] = []
    to_stdout: list[tuple[str, str]] = []
    folders: list[tuple[str, str, tuple[re.Pattern, str]]] = []  # folders written by name pattern
    for param in params:
        value = values.get(param.name)
        label = _label(param)
        if isinstance(param.type, OutputFolder) and param.type.written_with:
            if not values.get(param.type.written_with):
                continue  # nothing is written there
            if value is None:
                value, label = ".", f"{label} (default: the current folder)"
        if value is None:
            continue
        if isinstance(param.type, OutputFolder) and param.type.pattern is not None:
            folders.append((label, str(value), param.type.pattern))
        if isinstance(param.type, InputFile):
            inputs.append((label, str(value)))
        elif isinstance(param.type, OutputFile):
            _check_output_path(label, str(value), param.type.stdout)
            (outputs if str(value) != STDOUT else to_stdout).append((label, str(value)))
        elif isinstance(param.type, OutputFolder):
            if not str(value):
                raise UsageError(f"{label}: empty folder name; give the folder to write into")
            outputs += [(label, os.path.join(str(value), name)) for name in param.type.names]
    if len(to_stdout) > 1:
        raise UsageError(f"{' and '.join(label for label, _ in to_stdout)} cannot both go to standard output")
    for label, folder, (pattern, names) in folders:
        for in_label, inp in inputs:
            if same_file(folder, inp):
                raise UsageError(f"{label} {folder} is the input {in_label} {inp}; choose another folder")
            if written_by_pattern(folder, pattern, inp):
                raise UsageError(f"{label} {folder} could overwrite the input {in_label} {inp} (it gets files "
                                 f"named {names}); choose another folder or rename the input")
        for out_label, out in outputs + to_stdout:
            if same_file(folder, out):
                raise UsageError(f"{label} {folder} is also {out_label}; give each output its own name")
    for i, (out_label, out) in enumerate(outputs):
        for in_label, inp in inputs:
            if same_file(out, inp):
                raise UsageError(f"{out_label} {out} is the input {in_label} {inp}: writing it would destroy "
                                 "the input; choose another output file")
        for other_label, other in outputs[:i]:
            if same_file(out, other):
                raise UsageError(f"{out_label} {out} and {other_label} {other} are the same file; give each "
                                 "output its own file")


def _check_output_path(label: str, value: str, stdout: str | None) -> None:
    from tcc.model_io import UsageError

    if not value.strip():
        raise UsageError(f"{label}: empty file name; give the file to write")
    if value != STDOUT and os.path.isdir(value):
        raise UsageError(f"{label} {value}: is a folder; give the file to write")
    if value != STDOUT:
        return
    if stdout is None:
        raise UsageError(f"{label} -: this output cannot go to standard output; give a file name")
    if stdout == "binary" and stdout_is_terminal():
        raise UsageError(f"{label} -: refusing to write binary data to a terminal; redirect standard output "
                         "or give a file name")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def written_by_pattern(folder: str, pattern: re.Pattern, path: str) -> bool:
    """Whether writing files named by ``pattern`` into ``folder`` could overwrite ``path``: its name
    matches in that folder, or a file of the folder that matches is ``path`` (a link to it)."""
    if os.path.realpath(os.path.dirname(path) or ".") == os.path.realpath(folder or ".") \
            and pattern.fullmatch(os.path.basename(path)):
        return True
    try:
        names = [name for name in os.listdir(folder or ".") if pattern.fullmatch(name)]
    except OSError:
        return False
    return any(same_file(os.path.join(folder, name), path) for name in names)


def same_file(a: str, b: str) -> bool:
    """Whether writing ``a`` would overwrite ``b``: the same resolved path, or the same existing regular
    file (a hard link, a symlink, ``/dev/stdin`` redirected from it)."""
    if STDOUT in (a, b):
        return False
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b) and stat.S_ISREG(os.stat(b).st_mode)
    except OSError:
        return False
