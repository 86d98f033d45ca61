"""One check for rewrites that bring a layer onto the overlay: a model compiles with every op on the
device, the simulator equals the integer reference bit for bit, and the output is close to float
onnxruntime."""
import numpy as np
import onnxruntime as ort


def run_wholly_on_the_overlay(onnx_model, tmp_path, rng, min_sqnr: float, calib_samples: int = 8) -> float:
    """Compile ``onnx_model`` (one float input 'x', output 'y') for the overlay, run one new input; the
    output's SQNR in dB against float onnxruntime (asserted >= ``min_sqnr``)."""
    from tcc.cli import main
    from tcc.runtime import Session, open_session

    shape = tuple(d.dim_value for d in onnx_model.graph.input[0].type.tensor_type.shape.dim)
    model, calib, artifact = tmp_path / "m.onnx", tmp_path / "calib.npz", tmp_path / "m.tcc"
    model.write_bytes(onnx_model.SerializeToString())
    np.savez(calib, x=rng.standard_normal((calib_samples, *shape)).astype(np.float32))
    assert main(["compile", str(model), "-t", "overlay", "--calib", str(calib), "-o", str(artifact)]) == 0
    session = open_session(artifact)
    assert isinstance(session, Session)  # one device program: nothing on the host
    feeds = {"x": rng.standard_normal(shape).astype(np.float32)}
    got = session.run_dict(feeds)["y"]
    assert np.array_equal(got, session.run_reference(feeds)["y"])
    want = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    sqnr = float(10 * np.log10(np.sum(want.astype(np.float64) ** 2) / np.sum((want - got).astype(np.float64) ** 2)))
    assert sqnr >= min_sqnr, sqnr
    return sqnr
