"""Coverage-guided fuzzing with atheris (libFuzzer), optional: ``pip install atheris``.

    python tests/fuzz/atheris_fuzz.py TARGET [libFuzzer options, e.g. -runs=100000 -max_total_time=600]

TARGET is one of targets.TARGETS (ir_parser, assembler, decoder, artifact_loader, artifact_body,
onnx_loader).  The seeds start the run; a crash is written by libFuzzer as crash-<sha1> in the
current folder: copy it into tests/fuzz/corpus/TARGET/ so the tests replay it.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["tcc"]):  # coverage of tcc's code only: fast to start
        import targets

        seeds = targets.seeds(argv[1]) if len(argv) > 1 and argv[1] in targets.TARGETS else []
    if len(argv) < 2 or argv[1] not in targets.TARGETS:
        sys.exit(f"usage: {argv[0]} TARGET [libFuzzer options]; targets: {', '.join(targets.TARGETS)}")
    name = argv[1]

    def fn(data: bytes) -> None:
        targets.run(name, data)  # TccError is a clean rejection; anything else reaches libFuzzer
    seed_dir = Path(tempfile.mkdtemp(prefix=f"tcc-fuzz-{name}-"))
    for i, data in enumerate(seeds + [p.read_bytes() for p in targets.corpus_files(name)]):
        (seed_dir / f"seed{i}").write_bytes(data)
    atheris.Setup([argv[0], *argv[2:], str(seed_dir)], fn)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
