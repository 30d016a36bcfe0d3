"""Extract scikit-learn's copy of the UCI handwritten digits (1,797 images of 8x8 pixels, grey levels 0..16, with
their labels) into `digits.npz` beside this script: `images` uint8 (1797, 8, 8) and `labels` uint8 (1797,), in
the file's order.

The source is `sklearn/datasets/data/digits.csv.gz`, one image a line (64 pixel values, then the label). Give its
path, or let the script find it in an installed scikit-learn or in a scikit-learn wheel:

    python data/digits/extract.py [PATH_TO_digits.csv.gz | PATH_TO_scikit_learn-*.whl]
    # no scikit-learn at hand? `pip download scikit-learn --no-deps -d /tmp/skl`, then pass the wheel

Needs numpy; the book and the tests only read `digits.npz`.
"""
from __future__ import annotations

import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "sklearn/datasets/data/digits.csv.gz"
OUT = Path(__file__).resolve().parent / "digits.npz"


def read_source(arg: str | None) -> bytes:
    "The gzipped CSV's bytes: from a path to it, from a wheel, or from the installed scikit-learn."
    if arg is None:
        try:
            import sklearn  # only to locate its data folder
        except ImportError:
            sys.exit("no scikit-learn here: pass the path of digits.csv.gz or of a scikit-learn wheel "
                     "(`pip download scikit-learn --no-deps -d /tmp/skl`)")
        return (Path(sklearn.__file__).parent / "datasets" / "data" / "digits.csv.gz").read_bytes()
    path = Path(arg)
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(MEMBER)
    return path.read_bytes()


def main(arg: str | None = None) -> None:
    rows = np.loadtxt(io.StringIO(gzip.decompress(read_source(arg)).decode("ascii")), delimiter=",", dtype=np.int64)
    if rows.shape != (1797, 65) or rows[:, :64].min() < 0 or rows[:, :64].max() > 16 or set(rows[:, 64]) != set(range(10)):
        raise ValueError(f"unexpected digits.csv.gz: shape {rows.shape}, pixel range [{rows[:, :64].min()}, "
                         f"{rows[:, :64].max()}], labels {sorted(set(rows[:, 64]))}")
    images, labels = rows[:, :64].reshape(-1, 8, 8).astype(np.uint8), rows[:, 64].astype(np.uint8)
    np.savez_compressed(OUT, images=images, labels=labels)
    print(f"wrote {OUT}: {len(labels)} images, per class {np.bincount(labels).tolist()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
