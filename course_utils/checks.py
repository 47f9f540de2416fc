"""Assertion helpers whose failures tell the student what is wrong.

    >>> assert_close("dw", dw, dw_expected, tol=1e-7, hint="did you forget to transpose x?")
    AssertionError: dw: relative error 3.1e-02 > 1e-07, worst at [2, 3]
    hint: did you forget to transpose x?

Every helper first checks that the value exists, is numeric, has the right shape and is finite, so a
student who returned None or an array of the wrong shape reads that, not a numpy traceback.
"""

import numpy as np


def to_numpy(value):
    """A numpy array from an array, a torch tensor, a list or a Python scalar."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def rel_error(x, y):
    """Max relative error, as in cs231n: max |x - y| / max(1e-8, |x| + |y|)."""
    x, y = to_numpy(x).astype(np.float64), to_numpy(y).astype(np.float64)
    return float(np.max(_elementwise_rel_error(x, y), initial=0.0))


def _elementwise_rel_error(x, y):
    return np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))


def _fail(message, hint):
    if hint:
        message += f"\nhint: {hint}"
    raise AssertionError(message)


def _index(ix):
    return "[" + ", ".join(str(int(i)) for i in ix) + "]"


def _checked_array(name, actual, expected_shape, hint):
    """actual as a float64 array, or an AssertionError naming what is wrong with it."""
    if actual is None:
        _fail(f"{name}: got None, expected an array of shape {expected_shape} "
              "(did your function forget to return it?)", hint)
    try:
        arr = to_numpy(actual)
    except Exception as exc:  # e.g. a ragged list
        _fail(f"{name}: could not turn {type(actual).__name__} into an array ({exc})", hint)
    if arr.dtype.kind not in "biuf":
        _fail(f"{name}: expected a numeric array, got {type(actual).__name__} of dtype {arr.dtype}", hint)
    if arr.shape != tuple(expected_shape):
        _fail(f"{name}: shape {arr.shape} != expected {tuple(expected_shape)}", hint)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = _index(np.argwhere(bad)[0]) if arr.ndim else "the value"
        _fail(f"{name}: contains NaN or inf ({int(bad.sum())} of {arr.size} entries), first at {where}", hint)
    return arr.astype(np.float64)


def assert_shape(name, actual, expected_shape, hint=None):
    """Fail unless actual is an array (or tensor) of shape expected_shape."""
    if actual is None:
        _fail(f"{name}: got None, expected an array of shape {tuple(expected_shape)} "
              "(did your function forget to return it?)", hint)
    shape = tuple(getattr(actual, "shape", np.shape(actual)))
    if shape != tuple(expected_shape):
        _fail(f"{name}: shape {shape} != expected {tuple(expected_shape)}", hint)


def assert_close(name, actual, expected, tol=1e-7, hint=None):
    """Fail unless rel_error(actual, expected) <= tol; the message names the worst entry."""
    expected = to_numpy(expected).astype(np.float64)
    actual = _checked_array(name, actual, expected.shape, hint)
    err = _elementwise_rel_error(actual, expected)
    worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    if err.size and err[worst] > tol:
        where = f", worst at {_index(worst)}" if err.ndim else ""
        _fail(f"{name}: relative error {err[worst]:.1e} > {tol:.0e}{where}", hint)


def assert_scalar_close(name, actual, expected, tol, hint=None):
    """Fail unless the scalar actual is within relative error tol of expected (rel_error definition)."""
    if actual is None:
        _fail(f"{name}: got None, expected a number (did your function forget to return it?)", hint)
    arr = _checked_array(name, actual, np.shape(actual), hint)
    if arr.size != 1:
        _fail(f"{name}: expected a single number, got an array of shape {arr.shape}", hint)
    actual, expected = float(arr.reshape(())), float(to_numpy(expected).reshape(()))
    err = rel_error(actual, expected)
    if err > tol:
        _fail(f"{name}: got {actual:.6g}, expected {expected:.6g} "
              f"(relative error {err:.1e} > {tol:.0e})", hint)


def assert_at_least(name, actual, threshold, hint=None):
    """Fail unless the scalar actual is >= threshold (e.g. an accuracy)."""
    if actual is None:
        _fail(f"{name}: got None, expected a number >= {threshold}", hint)
    arr = _checked_array(name, actual, np.shape(actual), hint)
    if arr.size != 1:
        _fail(f"{name}: expected a single number, got an array of shape {arr.shape}", hint)
    value = float(arr.reshape(()))
    if value < threshold:
        _fail(f"{name}: {value:.4g} < required {threshold:.4g}", hint)
