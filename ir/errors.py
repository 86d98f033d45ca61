"""Exception types of the IR layer; the CLI catches ``TccError`` once and exits 2."""


class TccError(Exception):
    """Base of every error tcc reports to a user (message only, no traceback)."""

    exit_code = 2


class IRParseError(TccError):
    """Textual IR that does not parse; the message carries ``file:line:col``."""


class VerifyError(TccError):
    """A module that breaks an IR invariant; the message names the op and its location."""


class InterpreterError(TccError):
    """The reference interpreter was asked to run something it cannot."""


class PipelineError(TccError):
    """A pass pipeline spec that names an unknown pass or a bad option."""


class InternalError(TccError):
    """A bug in tcc itself (e.g. the verifier failing after a pass), not in the user's input."""

    exit_code = 3
