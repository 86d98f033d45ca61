"""Turn scikit-learn's 8x8 digits into event-camera frames by simulated saccades (numpy only).

    python examples/events/make_events.py [--out examples/events] [--train]

Each digit is drawn 3x enlarged at a random spot of a 32x32 sensor, which then makes three
saccades (a triangle, as in N-MNIST). A simulated DVS pixel fires one event each time its log
intensity moves by the contrast threshold since its last event (ON if up, OFF if down), plus
rare background-activity noise. The events of the whole window are counted per polarity into a
[2, 32, 32] histogram. Writes events_test.npz and events_calib.npz (and events_train.npz with
--train); see README.md. Deterministic for a given seed.
"""
from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

SEED = 0
SIDE = 32               # sensor is SIDE x SIDE pixels
SCALE = 3               # each 8x8 digit pixel covers 3x3 sensor pixels (a 24x24 digit)
PLACEMENT_JITTER = 2    # digit's top-left corner is 4 +- this many pixels
SACCADE = ((0.0, 0.0), (1.0, 1.5), (2.0, 0.0))  # triangle vertices (dy, dx) in sensor pixels
STEPS_PER_SACCADE = 8   # time steps per saccade (three saccades per window)
THRESHOLD = 1.4         # contrast threshold in log intensity (high: only strong edges fire)
BACKGROUND = 0.05       # scene intensity where the digit has no ink (log needs > 0)
NOISE_RATE = 2e-4       # background-activity events per pixel per time step
TEST_SIZE = 360
CALIB_SIZE = 200


def render(image: np.ndarray, top: float, left: float) -> np.ndarray:
    """Intensity [SIDE,SIDE] of one 8x8 digit (0..16) placed at a sub-pixel position, bilinear."""
    rows = (np.arange(SIDE) + 0.5 - top) / SCALE - 0.5
    cols = (np.arange(SIDE) + 0.5 - left) / SCALE - 0.5
    padded = np.pad(image.astype(np.float64) / 16.0, 1)  # zero ink outside the digit

    def taps(coords: np.ndarray):
        coords = np.clip(coords + 1.0, 0.0, 9.0 - 1e-9)  # +1: the padding row/column
        low = np.floor(coords).astype(np.int64)
        return low, coords - low

    r0, fr = taps(rows)
    c0, fc = taps(cols)
    ink = (padded[np.ix_(r0, c0)] * np.outer(1 - fr, 1 - fc)
           + padded[np.ix_(r0 + 1, c0)] * np.outer(fr, 1 - fc)
           + padded[np.ix_(r0, c0 + 1)] * np.outer(1 - fr, fc)
           + padded[np.ix_(r0 + 1, c0 + 1)] * np.outer(fr, fc))
    return BACKGROUND + (1.0 - BACKGROUND) * ink


def saccade_path() -> np.ndarray:
    """Offsets [T,2] (dy, dx) along the closed triangle, excluding the starting point."""
    vertices = np.array(SACCADE + (SACCADE[0],))
    steps = []
    for start, end in zip(vertices[:-1], vertices[1:]):
        for t in range(1, STEPS_PER_SACCADE + 1):
            steps.append(start + (end - start) * t / STEPS_PER_SACCADE)
    return np.array(steps)


def events_of(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Event counts uint8 [2,SIDE,SIDE] (channel 0: ON, 1: OFF) for one digit's saccades."""
    top, left = 4 + rng.integers(-PLACEMENT_JITTER, PLACEMENT_JITTER + 1, size=2)
    reference = np.log(render(image, top, left))
    counts = np.zeros((2, SIDE, SIDE), np.int64)
    for dy, dx in saccade_path():
        change = np.log(render(image, top + dy, left + dx)) - reference
        fired = np.trunc(change / THRESHOLD)  # signed number of threshold crossings
        counts[0] += np.maximum(fired, 0).astype(np.int64)
        counts[1] += np.maximum(-fired, 0).astype(np.int64)
        reference += fired * THRESHOLD
        noise = rng.random((2, SIDE, SIDE)) < NOISE_RATE
        counts += noise
    return np.minimum(counts, 255).astype(np.uint8)


def split(n: int, labels: np.ndarray, seed: int):
    """Stratified test / train indices and a stratified calibration subset of train."""
    rng = np.random.default_rng(seed)
    test, train = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        k = round(TEST_SIZE * len(members) / n)
        test.extend(members[:k])
        train.extend(members[k:])
    test, train = np.sort(np.array(test)), np.sort(np.array(train))
    calib = np.sort(rng.choice(train, CALIB_SIZE, replace=False))
    return train, test, calib


def load_images():
    """scikit-learn's bundled digits: images [1797,8,8] in 0..16 and labels int64 [1797]."""
    from sklearn.datasets import load_digits  # only for the raw images (bundled, offline)

    digits = load_digits()
    return digits.images, digits.target.astype(np.int64)


def frames_of(images: np.ndarray, seed: int) -> np.ndarray:
    """Event counts uint8 [N,2,SIDE,SIDE]; each seed gives other placements and noise."""
    rng = np.random.default_rng(seed)
    return np.stack([events_of(image, rng) for image in images])


def make_dataset(seed: int = SEED):
    """All 1797 digits as events: (counts uint8 [N,2,SIDE,SIDE], labels int64 [N], split indices)."""
    images, labels = load_images()
    return frames_of(images, seed), labels, split(len(labels), labels, seed)


def density_report(frames: np.ndarray) -> str:
    """Fraction of active sites (either polarity non-zero) per frame, summarised."""
    active = (frames != 0).any(axis=1).mean(axis=(1, 2))
    quantiles = np.quantile(active, [0.0, 0.1, 0.5, 0.9, 1.0])
    return ("active sites per frame: mean {:.3f}  min {:.3f}  p10 {:.3f}  median {:.3f}  "
            "p90 {:.3f}  max {:.3f}; events per frame: mean {:.0f}, max count per site {}").format(
        active.mean(), *quantiles, frames.sum(axis=(1, 2, 3)).mean(), frames.max())


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed but with fixed zip timestamps, so regeneration is byte-stable."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--train", action="store_true", help="also write events_train.npz")
    args = parser.parse_args()

    frames, labels, (train, test, calib) = make_dataset()
    print(f"{len(frames)} frames [2,{SIDE},{SIDE}]: train {len(train)}  test {len(test)}  "
          f"calib {len(calib)} (subset of train)")
    print("all:  " + density_report(frames))
    print("test: " + density_report(frames[test]))
    args.out.mkdir(parents=True, exist_ok=True)
    inputs = frames.astype(np.float32)  # the model's input dtype; counts are exact in float32
    save_npz(args.out / "events_test.npz", {"input": inputs[test], "label": labels[test]})
    save_npz(args.out / "events_calib.npz", {"input": inputs[calib]})
    if args.train:
        save_npz(args.out / "events_train.npz", {"input": inputs[train], "label": labels[train]})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
