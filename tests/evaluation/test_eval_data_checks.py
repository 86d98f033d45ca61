"""tcc eval's streamed data: what a member's .npy header declares is checked before anything is
decompressed (against what the archive records, what deflate can hold, 1 GiB per sample and for
the labels read whole), and a damaged archive is one line naming the file and key, exit 2."""
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"
MODEL, TEST = DIGITS / "digits_cnn.onnx", DIGITS / "digits_test.npz"


def _header(shape, dtype="<f4") -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue()


def _npy(array) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array)
    return out.getvalue()


def _archive(path, members, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as archive:
        for key, data in members.items():
            archive.writestr(f"{key}.npy", data)
    return path


@pytest.fixture(scope="module")
def digits():
    with np.load(TEST) as data:
        return data["input"][:16].copy(), data["label"][:16].copy()


def cases(d, digits):
    images, labels = digits
    good = _npy(images)
    stored_bomb = _archive(d / "stored.npz", {"input": _header((2**22, 1, 16, 16)) + bytes(1 << 20)},
                           zipfile.ZIP_STORED)
    deflate_bomb = _archive(d / "bomb.npz", {"input": _header((2**40, 1, 16, 16)) + bytes(1 << 20)})
    labels_bomb = _archive(d / "labels.npz", {"input": good, "label": _header((2**33,), "<i8") + bytes(1 << 20)})
    label_count = _archive(d / "count.npz", {"input": good, "label": _npy(labels[:5])})
    corrupt = _archive(d / "corrupt.npz", {"input": good})
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the deflate stream: zlib or the CRC check fails while streaming
    corrupt.write_bytes(bytes(data))
    truncated = d / "truncated.npz"
    truncated.write_bytes(TEST.read_bytes()[:3000])
    (d / "text.npz").write_text("input = [1, 2, 3]\n")
    bzip = _archive(d / "bzip2.npz", {"input": good}, zipfile.ZIP_BZIP2)
    return [
        ([stored_bomb], "stored.npz: key 'input': the header declares [4194304, 1, 16, 16] float32 (4294967296 "
                        "bytes), but the archive records 1048576 bytes"),
        ([deflate_bomb], "bomb.npz: key 'input': the header declares [1099511627776, 1, 16, 16]"),
        ([labels_bomb, "--labels", "label"], "labels.npz: key 'label': the header declares [8589934592] int64"),
        ([label_count, "--labels", "label"], "labels 'label': 5 labels for 16 samples"),
        ([corrupt], "corrupt.npz: key 'input': "),
        ([truncated], "truncated.npz: damaged or truncated .npz archive"),
        ([d / "text.npz"], "text.npz: not an .npy or .npz file"),
        ([bzip], "bzip2.npz: key 'input': compression method 12"),
    ]


def test_bad_data_is_refused_in_one_line(tmp_path, tcc_cli, digits):
    for args, message in cases(tmp_path, digits):
        code, out, err = tcc_cli("eval", MODEL, "--data", *args, "--paths", "float", "--workers", "1")
        assert code == 2 and message in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "allow_pickle" not in err, err


def test_a_header_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    """The refusal comes from the headers: no member's data is streamed."""
    from tcc.evaluation.data import ArrayDataset, EvalError, _Member

    _archive(tmp_path / "bomb.npz", {"input": _header((2**22, 1, 16, 16)) + bytes(1 << 20)})
    monkeypatch.setattr(_Member, "rows", lambda *a: pytest.fail("data was read"))
    with pytest.raises(EvalError, match="archive records 1048576 bytes"):
        ArrayDataset(tmp_path / "bomb.npz", {"input": (1, 1, 16, 16)})


def test_one_sample_over_the_cap_is_refused(tmp_path, monkeypatch):
    """A model with dynamic dims takes samples of any size: one that would not fit is refused."""
    import tcc.evaluation.data as data

    monkeypatch.setattr(data, "NPZ_LIMIT_BYTES", 4096)
    np.savez(tmp_path / "big.npz", x=np.zeros((2, 2048), np.float32))
    with pytest.raises(data.EvalError, match=r"key 'x': one sample of \[2, 2048\] takes 8192 bytes, more than the 4096"):
        data.ArrayDataset(tmp_path / "big.npz", {"x": (1, -1)})


def test_honest_archives_still_stream(tmp_path, digits):
    from tcc.evaluation.data import ArrayDataset

    images, labels = digits
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "d.npz", input=images, label=labels)
        rows = ArrayDataset(tmp_path / "d.npz", {"input": (1, 1, 16, 16)}, "label").read(3, 9)
        assert np.array_equal(np.stack([r.feeds["input"][0] for r in rows]), images[3:9])
        assert [r.label for r in rows] == labels[3:9].tolist()
