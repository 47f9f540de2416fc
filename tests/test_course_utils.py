"""Tests for course_utils: gradient checks, assertion messages, offline data, device helpers."""

import pickle
import random

import numpy as np
import pytest

import course_utils as cu

# ---------------------------------------------------------------- gradcheck


def test_numerical_gradient_of_sum_of_squares():
    x = np.random.default_rng(0).standard_normal((3, 4))
    x_before = x.copy()
    grad = cu.numerical_gradient(lambda: np.sum(x**2), x)
    assert grad.shape == (3, 4)
    assert cu.rel_error(grad, 2 * x) < 1e-8
    np.testing.assert_array_equal(x, x_before)  # every perturbation was undone


def test_numerical_gradient_subset_returns_values_at_indices():
    x = np.random.default_rng(1).standard_normal((5, 6))
    grad, idx = cu.numerical_gradient(lambda: np.sum(np.sin(x)), x, num_checks=7, seed=3)
    assert grad.shape == (7,) and len(idx) == 7 and len(set(idx)) == 7
    assert cu.rel_error(grad, np.array([np.cos(x[ix]) for ix in idx])) < 1e-8
    _, idx_again = cu.numerical_gradient(lambda: np.sum(np.sin(x)), x, num_checks=7, seed=3)
    assert idx == idx_again


def test_numerical_gradient_array_of_matrix_product():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    dout = rng.standard_normal((4, 5))
    a_before = a.copy()
    da = cu.numerical_gradient_array(lambda: a @ b, a, dout)  # d(sum((a@b) * dout))/da = dout @ b.T
    db = cu.numerical_gradient_array(lambda: a @ b, b, dout)  # = a.T @ dout
    assert cu.rel_error(da, dout @ b.T) < 1e-8
    assert cu.rel_error(db, a.T @ dout) < 1e-8
    np.testing.assert_array_equal(a, a_before)


def test_numerical_gradient_array_copes_with_f_returning_its_input():
    x = np.random.default_rng(3).standard_normal(6)
    dout = np.arange(6.0)
    assert cu.rel_error(cu.numerical_gradient_array(lambda: x, x, dout), dout) < 1e-8


# ---------------------------------------------------------------- checks


def test_rel_error_definition():
    assert cu.rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert cu.rel_error(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    assert cu.rel_error(0.0, 1e-9) == pytest.approx(0.1)  # denominator floored at 1e-8


def test_assert_close_passes_on_torch_expected():
    torch = pytest.importorskip("torch")
    x = np.linspace(0, 1, 6).reshape(2, 3)
    cu.assert_close("x", x, torch.tensor(x))


def test_assert_close_message_names_error_tolerance_and_worst_index():
    expected = np.ones((4, 5))
    actual = expected.copy()
    actual[2, 3] = 1.0645  # relative error 0.0645 / 2.0645 = 3.1e-02
    actual[1, 1] = 1.001
    with pytest.raises(AssertionError) as info:
        cu.assert_close("dx", actual, expected, hint="did you forget to transpose w?")
    assert str(info.value) == (
        "dx: relative error 3.1e-02 > 1e-07, worst at [2, 3]\nhint: did you forget to transpose w?"
    )


def test_assert_close_none_is_reported_as_missing_return():
    with pytest.raises(AssertionError, match=r"^dw: got None, expected an array of shape \(2, 3\)"):
        cu.assert_close("dw", None, np.zeros((2, 3)))


def test_assert_close_shape_mismatch():
    with pytest.raises(AssertionError, match=r"^db: shape \(3, 1\) != expected \(3,\)"):
        cu.assert_close("db", np.zeros((3, 1)), np.zeros(3))


def test_assert_close_not_numeric():
    with pytest.raises(AssertionError, match=r"^out: expected a numeric array, got str"):
        cu.assert_close("out", "hello", np.zeros(()))


def test_assert_close_nan_and_inf():
    actual = np.zeros((2, 2))
    actual[1, 0] = np.nan
    actual[1, 1] = np.inf
    message = r"^out: contains NaN or inf \(2 of 4 entries\), first at \[1, 0\]"
    with pytest.raises(AssertionError, match=message):
        cu.assert_close("out", actual, np.zeros((2, 2)))


def test_assert_close_respects_tolerance():
    cu.assert_close("x", np.array([1.0 + 1e-6]), np.array([1.0]), tol=1e-5)
    with pytest.raises(AssertionError, match=r"^x: relative error 5\.0e-07 > 1e-07, worst at \[0\]$"):
        cu.assert_close("x", np.array([1.0 + 1e-6]), np.array([1.0]))


def test_assert_shape():
    cu.assert_shape("h", np.zeros((2, 3)), (2, 3))
    with pytest.raises(AssertionError, match=r"^h: shape \(3, 2\) != expected \(2, 3\)\nhint: transpose\?$"):
        cu.assert_shape("h", np.zeros((3, 2)), (2, 3), hint="transpose?")
    with pytest.raises(AssertionError, match="h: got None"):
        cu.assert_shape("h", None, (2, 3))


def test_assert_scalar_close():
    cu.assert_scalar_close("loss", np.float64(2.0), 2.0 + 1e-9, tol=1e-7)
    message = r"^loss: got 2, expected 2\.5 \(relative error 1\.1e-01 > 1e-06\)$"
    with pytest.raises(AssertionError, match=message):
        cu.assert_scalar_close("loss", 2.0, 2.5, tol=1e-6)
    with pytest.raises(AssertionError, match="loss: expected a single number, got an array of shape"):
        cu.assert_scalar_close("loss", np.zeros(3), 0.0, tol=1e-6)
    with pytest.raises(AssertionError, match="loss: got None"):
        cu.assert_scalar_close("loss", None, 0.0, tol=1e-6)
    with pytest.raises(AssertionError, match="loss: contains NaN"):
        cu.assert_scalar_close("loss", float("nan"), 0.0, tol=1e-6)


def test_assert_at_least():
    cu.assert_at_least("val accuracy", 0.95, 0.9)
    with pytest.raises(AssertionError, match=r"^val accuracy: 0\.85 < required 0\.9$"):
        cu.assert_at_least("val accuracy", 0.85, 0.9)


# ---------------------------------------------------------------- data


def test_load_digits_split_shapes_and_centring():
    d = cu.load_digits(seed=0)
    n = len(d["X_train"]) + len(d["X_val"]) + len(d["X_test"])
    assert n == 1797 and len(d["X_val"]) == len(d["X_test"]) == 359
    for split in ("train", "val", "test"):
        assert d[f"X_{split}"].dtype == np.float64 and d[f"X_{split}"].shape[1] == 64
        assert d[f"y_{split}"].dtype == np.int64 and len(d[f"y_{split}"]) == len(d[f"X_{split}"])
    assert np.abs(d["X_train"].mean(axis=0)).max() < 1e-12
    assert d["X_train"].max() <= 1.0 and d["X_train"].min() >= -1.0


def test_load_digits_is_deterministic_per_seed():
    a, b, c = cu.load_digits(seed=0), cu.load_digits(seed=0), cu.load_digits(seed=1)
    np.testing.assert_array_equal(a["X_train"], b["X_train"])
    np.testing.assert_array_equal(a["y_val"], b["y_val"])
    assert not np.array_equal(a["y_train"], c["y_train"])


def test_load_digits_reads_sklearns_digits_without_importing_sklearn():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    pixels, labels = cu.data._sklearn_digits()
    np.testing.assert_array_equal(pixels, load_digits().data)
    np.testing.assert_array_equal(labels, load_digits().target)
    fresh = "import sys, course_utils; course_utils.load_digits(); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", fresh], capture_output=True, text=True).stdout.strip() == "False"


def _write_fake_cifar(root, sizes, test_size):
    rng = np.random.default_rng(0)
    batches = {f"data_batch_{i + 1}": n for i, n in enumerate(sizes)}
    batches["test_batch"] = test_size
    for name, n in batches.items():
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).tolist()
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)


def test_load_cifar10_tiny_fake_batches(tmp_path):
    _write_fake_cifar(tmp_path, sizes=[3, 2, 4, 1, 2], test_size=5)
    with open(tmp_path / "data_batch_2", "rb") as f:
        raw = pickle.load(f)
    d = cu.load_cifar10(tmp_path)
    assert d["X_train"].shape == (12, 32, 32, 3) and d["y_train"].shape == (12,)
    assert d["X_test"].shape == (5, 32, 32, 3) and d["y_test"].dtype == np.int64
    # first image of batch 2 is row 3; channel 1 (green) pixel (row 0, col 5) sits at 1024 + 5
    assert d["X_train"][3, 0, 5, 1] == raw[b"data"][0, 1024 + 5]
    assert d["X_train"][3, 2, 0, 2] == raw[b"data"][0, 2048 + 64]
    assert d["y_train"][3] == raw[b"labels"][0]
    d = cu.load_cifar10(tmp_path, num_training=4, num_test=2)
    assert d["X_train"].shape[0] == 4 and d["X_test"].shape[0] == 2


def test_load_cifar10_missing_file_names_it(tmp_path):
    _write_fake_cifar(tmp_path, sizes=[3, 2], test_size=5)
    assert cu.load_cifar10(tmp_path, num_training=5)["X_train"].shape[0] == 5  # batches 3..5 not needed
    with pytest.raises(FileNotFoundError, match=r"data_batch_3(.|\n)*cifar-10-python\.tar\.gz"):
        cu.load_cifar10(tmp_path)


def test_char_corpus_round_trip_and_pin():
    corpus = cu.CharCorpus()
    assert len(corpus.text) > 10_000 and corpus.vocab == sorted(set(corpus.text))
    ids = corpus.encode("def f(x):\n    return x")
    assert ids.dtype == np.int64 and ids.max() < corpus.vocab_size
    assert corpus.decode(ids) == "def f(x):\n    return x"
    assert corpus.sha256 == cu.CharCorpus().sha256 and len(corpus.sha256) == 64
    train, val = corpus.split(0.1)
    assert len(train) + len(val) == len(corpus.text)
    assert corpus.decode(val[:50]) == corpus.text[len(train):][:50]
    with pytest.raises(ValueError, match="not in the corpus vocabulary"):
        corpus.encode("\x00")


# ---------------------------------------------------------------- device


def test_seed_everything_repeats_draws():
    torch = pytest.importorskip("torch")
    cu.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    cu.seed_everything(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_get_device_matches_torch():
    torch = pytest.importorskip("torch")
    assert cu.get_device() == ("cuda" if torch.cuda.is_available() else "cpu")
