"""Extract the Fashion-MNIST subset the Vision Transformer chapter ships into `fashion_mnist.npz` beside this script.

The source is Debian's package `dataset-fashion-mnist` (`apt-get install dataset-fashion-mnist`), which installs the
published files in /usr/share/datasets/fashion-mnist/: `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` (idx
format: a big-endian header, then one unsigned byte per pixel or label; 60,000 training and 10,000 test images of
28x28 pixels, 10 classes). The subset keeps

- `train_images` uint8 (10000, 28, 28) and `train_labels` uint8 (10000,): the first 1,000 images of each class in
  the published training file, in the file's order;
- `test_images` uint8 (10000, 28, 28) and `test_labels` uint8 (10000,): the whole published test set, unchanged.

    python data/fashion_mnist/extract.py [FOLDER]   # default /usr/share/datasets/fashion-mnist

Needs numpy; the book and the tests only read `fashion_mnist.npz`. The long run (`python -m
attn_tutorial.train_vit`) reads all 60,000 training images from the package's folder when it is installed.
"""
from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np

SOURCE = Path("/usr/share/datasets/fashion-mnist")
OUT = Path(__file__).resolve().parent / "fashion_mnist.npz"
PER_CLASS = 1000


def read_idx(path: Path) -> np.ndarray:
    "An idx file (gzipped): magic 0x0801 (labels) or 0x0803 (images), its sizes, then uint8 data."
    data = gzip.decompress(path.read_bytes())
    zero, kind, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != 0x08 or dims not in (1, 3):
        raise ValueError(f"{path} is not an idx file of unsigned bytes with 1 or 3 dimensions")
    shape = struct.unpack(f">{dims}I", data[4:4 + 4 * dims])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main(folder: str | None = None) -> None:
    src = Path(folder) if folder else SOURCE
    if not src.is_dir():
        sys.exit(f"{src} not found: `apt-get install dataset-fashion-mnist`, or pass the folder of the four files")
    train_x, train_y = (read_idx(src / f"train-{n}-ubyte.gz") for n in ("images-idx3", "labels-idx1"))
    test_x, test_y = (read_idx(src / f"t10k-{n}-ubyte.gz") for n in ("images-idx3", "labels-idx1"))
    if train_x.shape != (60000, 28, 28) or test_x.shape != (10000, 28, 28) or len(train_y) != 60000 \
            or len(test_y) != 10000 or set(train_y) != set(range(10)):
        raise ValueError(f"unexpected files: train {train_x.shape} {train_y.shape}, test {test_x.shape}")
    keep = np.sort(np.concatenate([np.flatnonzero(train_y == c)[:PER_CLASS] for c in range(10)]))
    np.savez_compressed(OUT, train_images=train_x[keep], train_labels=train_y[keep], test_images=test_x,
                        test_labels=test_y)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB): {len(keep)} training images "
          f"({PER_CLASS} a class), {len(test_y)} test images")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
