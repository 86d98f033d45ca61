"""tcc: an ONNX-to-FPGA-accelerator compiler with a bit-exact instruction-set simulator."""

__version__ = "0.1.0"
