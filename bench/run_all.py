"""Run every benchmark in bench/ in turn: `python bench/run_all.py`."""
import subprocess
import sys
from pathlib import Path

BENCHES = ["conformance.py", "compile_time.py", "overlay.py", "transformer.py", "sparse_density.py", "sparse_hls_zoo.py",
           "quant_vs_ort.py", "eval_scale.py", "real_models.py", "host_tail.py"]

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    failed = 0
    for bench in BENCHES:
        print(f"== {bench}", flush=True)
        failed |= subprocess.call([sys.executable, str(here / bench)])
    sys.exit(failed)
