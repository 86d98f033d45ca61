"""A mutation-based fuzz campaign over tcc's input formats (longer than the tests run).

    python tests/fuzz/campaign.py [--seconds 60 | --cases 100000 [--chunk 2000]] [--targets ir_parser,onnx_loader]
                                  [--seed 0] [--state DIR [--shard K/N]] [--totals DIR]

For each target it mutates the seed inputs (and the corpus of inputs that once crashed) and runs
the target on each; a crash is any exception other than TccError, a case taking more than --timeout
seconds (a hang) or a MemoryError under the --memory-mb address-space limit (a blow-up).
Crashing inputs are saved to tests/fuzz/corpus/<target>/, which test_fuzz.py replays.
Prints the number of cases tried per target.

With ``--state DIR`` the counts are kept in DIR/<target>.json after every chunk, and a run started
again with the same DIR continues where the last one stopped (a killed or starved run loses at most
one chunk).  Chunk k of a target draws its cases from its own generator, seeded by (seed, target, k),
so a resumed run tries new cases, never the ones already counted.  ``--shard K/N`` lets N processes
share a target (on a machine with cores to spare): shard K keeps DIR/<target>.shard-K.json and
draws from its own generators, and every process stops when the shards' counts (and an unsharded
run's) add up to --cases.
``--totals DIR`` prints the counts summed over the shards, without running anything.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mutations  # noqa: E402
import targets  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_case(name: str, data: bytes, timeout: float) -> str | bool:
    """True if the target accepted ``data``, False if it cleanly rejected it, else a one-line crash
    description."""
    signal.setitimer(signal.ITIMER_PROF, timeout)
    try:
        return targets.run(name, data)
    except Hang:
        return f"hang: more than {timeout} s of CPU time"
    except MemoryError:
        return "memory blow-up (MemoryError)"
    except Exception as exc:  # the crash we are looking for
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return f"{type(exc).__name__}: {str(exc)[:200]} at {Path(frame.filename).name}:{frame.lineno}"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def campaign(name: str, seconds: float, rng: random.Random, timeout: float,
             max_cases: int | None = None) -> tuple[int, int, dict[str, bytes]]:
    """(cases tried, cases accepted, distinct crashes), after ``seconds`` or ``max_cases`` cases,
    whichever comes first."""
    pool = targets.seeds(name) + [p.read_bytes() for p in targets.corpus_files(name)]
    crashes: dict[str, bytes] = {}
    cases = accepted = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and (max_cases is None or cases < max_cases):
        data = rng.choice(pool)
        if name == "onnx_loader" and rng.random() < 0.5:
            data = mutations.mutate_onnx(data, rng)
        elif name in ("artifact_body", "sparse_body") and rng.random() < 0.5:
            data = mutations.mutate_json(data, rng)
        else:
            data = mutations.mutate_bytes(data, rng, pool)
        cases += 1
        crash = run_case(name, data, timeout)
        if crash is True:
            accepted += 1
        elif crash is not False:
            key = crash.split(" at ")[-1] + " " + crash.split(":")[0]
            if key not in crashes:
                crashes[key] = data
                path = targets.save_crash(name, data)
                print(f"  {name}: {crash}\n    saved {path.relative_to(targets.ROOT)}", flush=True)
    return cases, accepted, crashes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="per target (default 60 without --cases)")
    parser.add_argument("--cases", type=int, default=None, help="per target: stop after this many cases")
    parser.add_argument("--chunk", type=int, default=None,
                        help="targets take turns, this many cases each, and the table prints after every "
                             "round (so a run stopped early has counts for every target)")
    parser.add_argument("--targets", default=",".join(targets.TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="CPU seconds per case before it counts as a hang (CPU time, so a loaded machine gives no false hangs)")
    parser.add_argument("--state", default=None, help="folder keeping the counts per target: resume from it")
    parser.add_argument("--shard", default=None, metavar="K/N", help="with --state: this process is shard K of N")
    parser.add_argument("--totals", default=None, metavar="DIR", help="print the counts kept in DIR and exit")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space limit")
    args = parser.parse_args(argv)
    if args.totals:
        return _print_totals(Path(args.totals))
    seconds = args.seconds if args.seconds is not None else (float("inf") if args.cases else 60.0)
    limit = args.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGPROF, _alarm)
    rng = random.Random(args.seed)
    names = args.targets.split(",")
    state = Path(args.state) if args.state else None
    shard = f".shard-{args.shard.split('/')[0]}" if args.shard else ""
    totals = {name: _load_state(state, name + shard, args.seed) for name in names}  # cases, accepted, crashes, seconds
    for name in names:
        targets.seeds(name)  # build seeds outside the timed loop
    while True:
        done = {n: totals[n][0] + (_other_shards(state, n, shard) if state else 0) for n in names}
        active = [n for n in names if (args.cases is None or done[n] < args.cases) and totals[n][3] < seconds]
        if not active:
            break
        for name in active:
            total = totals[name]
            want = args.cases - done[name] if args.cases is not None else None
            if args.chunk:
                want = args.chunk if want is None else min(want, args.chunk)
                rng = random.Random(f"{args.seed}/{name}{shard}/{total[0]}")  # this chunk's own cases
            start = time.monotonic()
            cases, accepted, crashes = campaign(name, seconds - total[3], rng, args.timeout, want)
            total[0] += cases
            total[1] += accepted
            total[2].update(crashes)
            total[3] += time.monotonic() - start
            _save_state(state, name + shard, args.seed, total)
        if args.chunk:
            _table(names, totals)
    if not args.chunk:
        _table(names, totals)
    return 1 if any(total[2] for total in totals.values()) else 0


def _other_shards(state: Path, name: str, shard: str) -> int:
    """Cases the other shards of target ``name`` (and an unsharded run) have counted."""
    files = [state / f"{name}.json", *state.glob(f"{name}.shard-*.json")]
    return sum(json.loads(f.read_text())["cases"] for f in files if f.exists() and f.name != f"{name}{shard}.json")


def _print_totals(state: Path) -> int:
    """The counts in ``state`` by target, shards summed."""
    totals: dict[str, list] = {}
    for f in sorted(state.glob("*.json")):
        saved = json.loads(f.read_text())
        total = totals.setdefault(f.name.split(".")[0], [0, 0, {}, 0.0])
        total[0] += saved["cases"]
        total[1] += saved["accepted"]
        total[2].update(dict.fromkeys(saved["crashes"]))
        total[3] += saved["seconds"]
    _table(sorted(totals), totals)
    return 0


def _load_state(state: Path | None, name: str, seed: int) -> list:
    if state is None or not (state / f"{name}.json").exists():
        return [0, 0, {}, 0.0]
    saved = json.loads((state / f"{name}.json").read_text())
    if saved["seed"] != seed:
        raise SystemExit(f"{state / name}.json was made with --seed {saved['seed']}, not {seed}")
    return [saved["cases"], saved["accepted"], dict.fromkeys(saved["crashes"], b""), saved["seconds"]]


def _save_state(state: Path | None, name: str, seed: int, total: list) -> None:
    if state is None:
        return
    state.mkdir(parents=True, exist_ok=True)
    doc = {"seed": seed, "cases": total[0], "accepted": total[1], "crashes": sorted(total[2]), "seconds": total[3]}
    tmp = state / f".{name}.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, state / f"{name}.json")


def _table(names, totals) -> None:
    print(f"{'target':<18} {'cases':>8} {'accepted':>9} {'distinct crashes':>17} {'seconds':>8}")
    for name in names:
        cases, accepted, crashes, elapsed = totals[name]
        print(f"{name:<18} {cases:>8} {accepted:>9} {len(crashes):>17} {elapsed:>8.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
