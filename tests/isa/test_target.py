"""The target description: the default TOML, round trips, and the errors a bad file gets."""
import pytest

from tcc.ir.errors import TccError
from tcc.isa.target import DEFAULT_TARGET, TargetConfig, TargetError, load_target

DEFAULT_TEXT = DEFAULT_TARGET.read_text()


def write(tmp_path, text):
    path = tmp_path / "target.toml"
    path.write_text(text)
    return path


def test_default_file_is_the_dataclass_default():
    target = load_target()
    assert target == TargetConfig()
    assert (target.name, target.clock_mhz, target.array_rows, target.array_cols) == ("tataa", 225, 32, 32)
    assert (target.simd_lanes, target.simd_latency) == (128, 16)
    assert target.dram_bytes_per_cycle == 64
    assert target.peak_macs_per_cycle == 1024
    assert target.buffer_bytes("abuf") == target.abuf_bytes == 512 * 1024


def test_dict_round_trip():
    target = load_target()
    assert TargetConfig.from_dict(target.to_dict()) == target
    smaller = TargetConfig.from_dict({**target.to_dict(), "abuf_bytes": 32768, "name": "tataa-paper"})
    assert smaller.abuf_bytes == 32768 and smaller.wbuf_bytes == target.wbuf_bytes


def test_load_a_written_file(tmp_path):
    path = write(tmp_path, DEFAULT_TEXT.replace("array_cols = 32", "array_cols = 16"))
    assert load_target(path).array_cols == 16
    assert load_target(str(path)).peak_macs_per_cycle == 32 * 16


def test_missing_file(tmp_path):
    with pytest.raises(TargetError, match="does not exist"):
        load_target(tmp_path / "nope.toml")


def test_bad_toml_names_the_file(tmp_path):
    path = write(tmp_path, "name = \n")
    with pytest.raises(TargetError, match=r"target\.toml: not valid TOML"):
        load_target(path)


def test_unknown_key(tmp_path):
    path = write(tmp_path, DEFAULT_TEXT + "\nabuff_bytes = 4\n")
    with pytest.raises(TargetError, match="unknown key.*abuff_bytes; known keys: name"):
        load_target(path)


def test_missing_key(tmp_path):
    path = write(tmp_path, DEFAULT_TEXT.replace("dma_latency = 64", ""))
    with pytest.raises(TargetError, match="missing key.*dma_latency"):
        load_target(path)


@pytest.mark.parametrize("line, message", [
    ("vbuf_bytes = 0", "vbuf_bytes = 0 is out of range: it takes 1..16777216"),
    ("array_rows = -32", "array_rows = -32 is out of range"),
    ("dma_latency = -1", "dma_latency = -1 is out of range: it takes 0..2147483647"),
    ("clock_mhz = 0", "clock_mhz = 0 is out of range"),
    ("simd_lanes = 128.0", "simd_lanes must be an integer"),
    ("mode_switch = true", "mode_switch must be an integer"),
    ("name = \"\"", "name must be a non-empty string"),
    ("array_rows = 100000000", "array_rows = 100000000 is out of range: it takes 1..16777216"),
    ("load_queue = 0", "load_queue = 0 is out of range: it takes 1..65536 \\(entries, at least one\\)"),
    ("cores = 0", "cores = 0 is out of range: it takes 1..64"),
    ("cores = 2.5", "cores must be an integer"),
    ("abuf_bytes = 33554432", r"abuf_bytes = 33554432 is out of range: it takes 1..16777216 \(what an SRAM address field reaches\)"),
    ("dram_bytes = 4294967296", "dram_bytes = 4294967296 is out of range: it takes 1..2147483648"),
])
def test_bad_values(tmp_path, line, message):
    key = line.split(" = ")[0]
    lines = [line if text.startswith(f"{key} = ") else text for text in DEFAULT_TEXT.splitlines()]
    with pytest.raises(TargetError, match=message):
        load_target(write(tmp_path, "\n".join(lines)))


def test_target_error_is_a_tcc_error():
    assert issubclass(TargetError, TccError)
    with pytest.raises(TargetError, match="acc_bytes = 0 is out of range"):
        TargetConfig(acc_bytes=0)
    with pytest.raises(TargetError, match="expected a table"):
        TargetConfig.from_dict([1, 2])
