def pytest_addoption(parser):
    parser.addoption("--quant", default=None, choices=["int8"],
                     help="conformance cases: quantize to int8 (calibrated on each case's inputs) and compare "
                          "with ONNX's expected outputs at a loose tolerance, reporting SQNR; informational "
                          "(failures are expected failures)")
