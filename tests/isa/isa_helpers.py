"""Assembly text builders shared by the simulator tests."""


def setr(registers: dict[str, int]) -> str:
    """``setr`` lines writing {register name: value}, in order."""
    return "".join(f"setr {name}, {value}\n" for name, value in registers.items())
