"""Offline data sets. Nothing here downloads anything.

- load_digits: sklearn's 8x8 handwritten digits (1797 images, ships with scikit-learn), split and centred.
- load_cifar10: CIFAR-10 from the standard python pickles in a local folder.
- CharCorpus: a character-level text corpus built from Python's own documentation (pydoc_data.topics).
"""

import hashlib
import importlib.util
import os
import pickle

import numpy as np

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _sklearn_digits():
    """The file sklearn.datasets.load_digits reads, read the same way, without importing scikit-learn
    (about a second, paid by both the student process and the judge of every a1 grading).
    Returns pixels (1797, 64) float64 in 0..16 and labels (1797,) int64."""
    package = importlib.util.find_spec("sklearn").submodule_search_locations[0]
    table = np.loadtxt(os.path.join(package, "datasets", "data", "digits.csv.gz"), delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_digits(seed=0, val_fraction=0.2, test_fraction=0.2):
    """sklearn digits split into train/val/test, deterministic for a given seed.

    Features are pixel intensities scaled to [0, 1], then centred by subtracting the TRAINING mean
    (the same mean is subtracted from val and test, so no information leaks from them).
    Returns dict with X_train (N_train, 64) float64, y_train (N_train,) int64, and likewise _val, _test.
    """
    pixels, labels = _sklearn_digits()
    X = pixels / 16.0  # (1797, 64), pixels 0..16 -> [0, 1]
    y = labels  # (1797,)

    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    n_val = int(round(val_fraction * len(X)))
    test, val, train = np.split(order, [n_test, n_test + n_val])

    mean = X[train].mean(axis=0)  # (64,)
    return {
        "X_train": X[train] - mean, "y_train": y[train],
        "X_val": X[val] - mean, "y_val": y[val],
        "X_test": X[test] - mean, "y_test": y[test],
    }


def _load_cifar_batch(path):
    """One CIFAR-10 pickle -> X (N, 32, 32, 3) uint8, y (N,) int64."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"CIFAR-10 file not found: {path}\n"
            f"Download the python version of CIFAR-10 from {CIFAR10_URL}, extract it and pass the folder "
            "that holds data_batch_1 ... data_batch_5 and test_batch (usually cifar-10-batches-py)."
        )
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")  # local instructor-provided file, trusted
    data = np.asarray(batch[b"data"], dtype=np.uint8)  # (N, 3072): 1024 red, 1024 green, 1024 blue
    X = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 3, 32, 32) -> (N, 32, 32, 3)
    y = np.asarray(batch[b"labels"], dtype=np.int64)
    return X, y


def load_cifar10(root, num_training=None, num_test=None, dtype=np.float32):
    """CIFAR-10 from the python pickles in `root` (data_batch_1..5, test_batch), batches of any size.

    num_training / num_test: keep only the first N examples (None = all). Training batches are read in
    order and reading stops once num_training examples are in hand, so a subset that ships only
    data_batch_1 works when num_training fits in it.
    Returns dict with X_train (N, 32, 32, 3) raw pixel values 0..255 as `dtype`, y_train (N,) int64,
    X_test, y_test likewise. Layout is channels-last; use X.transpose(0, 3, 1, 2) for (N, C, H, W).
    Raises FileNotFoundError naming the missing file and where to get CIFAR-10.
    """
    xs, ys = [], []
    for i in range(1, 6):
        if num_training is not None and sum(len(y) for y in ys) >= num_training:
            break
        X, y = _load_cifar_batch(os.path.join(root, f"data_batch_{i}"))
        xs.append(X)
        ys.append(y)
    X_train, y_train = np.concatenate(xs)[:num_training], np.concatenate(ys)[:num_training]
    X_test, y_test = _load_cifar_batch(os.path.join(root, "test_batch"))
    X_test, y_test = X_test[:num_test], y_test[:num_test]
    return {
        "X_train": X_train.astype(dtype), "y_train": y_train,
        "X_test": X_test.astype(dtype), "y_test": y_test,
    }


class CharCorpus:
    """Character-level corpus: Python's help topics (pydoc_data.topics), joined in sorted key order.

    The text depends on the Python version; `sha256` identifies it so an assignment can pin it.
        corpus = CharCorpus()
        ids = corpus.encode("def f():")   # np.int64 array of indices into corpus.vocab
        corpus.decode(ids) == "def f():"
    """

    def __init__(self):
        from pydoc_data.topics import topics

        self.text = "\n".join(topics[key] for key in sorted(topics))
        self.vocab = sorted(set(self.text))  # list of single characters
        self.stoi = {ch: i for i, ch in enumerate(self.vocab)}
        self.sha256 = hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def vocab_size(self):
        return len(self.vocab)

    def encode(self, s):
        """str -> (len(s),) int64 array of vocabulary indices."""
        unknown = sorted(set(s) - self.stoi.keys())
        if unknown:
            raise ValueError(f"characters not in the corpus vocabulary: {unknown!r}")
        return np.array([self.stoi[ch] for ch in s], dtype=np.int64)

    def decode(self, ids):
        """Sequence of vocabulary indices -> str."""
        return "".join(self.vocab[int(i)] for i in ids)

    def split(self, val_fraction=0.1):
        """The whole text encoded, cut into (train_ids, val_ids); val is the last val_fraction."""
        ids = self.encode(self.text)
        n_val = int(len(ids) * val_fraction)
        return ids[: len(ids) - n_val], ids[len(ids) - n_val:]
