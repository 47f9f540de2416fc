"""Assertion helpers whose failures tell the student what is wrong.

    >>> assert_close("dw", dw, dw_expected, tol=1e-7, hint="did you forget to transpose x?")
    AssertionError: dw: relative error 3.1e-02 > 1e-07, worst at [2, 3]
    hint: did you forget to transpose x?

Every helper first checks that the value exists, is numeric, has the right shape and is finite, so a
student who returned None or an array of the wrong shape reads that, not a numpy traceback.
"""

import numpy as np

from course_utils.i18n import _, translate_message


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
        message += "\n" + _("hint: ") + translate_message(hint)
    raise AssertionError(message)


def _index(ix):
    return "[" + ", ".join(str(int(i)) for i in ix) + "]"


def _checked_array(name, actual, expected_shape, hint):
    """actual as a float64 array, or an AssertionError naming what is wrong with it."""
    if actual is None:
        _fail(_("{name}: got None, expected an array of shape {shape} (did your function forget to return it?)")
              .format(name=name, shape=tuple(expected_shape)), hint)
    try:
        arr = to_numpy(actual)
    except Exception as exc:  # e.g. a ragged list
        _fail(_("{name}: could not turn {type} into an array ({error})").format(
            name=name, type=type(actual).__name__, error=exc), hint)
    if arr.dtype.kind not in "biuf":
        _fail(_("{name}: expected a numeric array, got {type} of dtype {dtype}").format(
            name=name, type=type(actual).__name__, dtype=arr.dtype), hint)
    if arr.shape != tuple(expected_shape):
        _fail(_("{name}: shape {shape} != expected {expected}").format(
            name=name, shape=arr.shape, expected=tuple(expected_shape)), hint)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = _index(np.argwhere(bad)[0]) if arr.ndim else _("the value")
        _fail(_("{name}: contains NaN or inf ({count} of {size} entries), first at {where}").format(
            name=name, count=int(bad.sum()), size=arr.size, where=where), hint)
    return arr.astype(np.float64)


def assert_shape(name, actual, expected_shape, hint=None):
    """Fail unless actual is an array (or tensor) of shape expected_shape."""
    if actual is None:
        _fail(_("{name}: got None, expected an array of shape {shape} (did your function forget to return it?)")
              .format(name=name, shape=tuple(expected_shape)), hint)
    shape = tuple(getattr(actual, "shape", np.shape(actual)))
    if shape != tuple(expected_shape):
        _fail(_("{name}: shape {shape} != expected {expected}").format(
            name=name, shape=shape, expected=tuple(expected_shape)), hint)


def assert_close(name, actual, expected, tol=1e-7, hint=None):
    """Fail unless rel_error(actual, expected) <= tol; the message names the worst entry."""
    expected = to_numpy(expected).astype(np.float64)
    actual = _checked_array(name, actual, expected.shape, hint)
    err = _elementwise_rel_error(actual, expected)
    worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    if err.size and err[worst] > tol:
        if err.ndim:
            message = _("{name}: relative error {error} > {tol}, worst at {where}")
        else:
            message = _("{name}: relative error {error} > {tol}")
        _fail(message.format(name=name, error=f"{err[worst]:.1e}", tol=f"{tol:.0e}", where=_index(worst)), hint)


def assert_scalar_close(name, actual, expected, tol, hint=None):
    """Fail unless the scalar actual is within relative error tol of expected (rel_error definition)."""
    if actual is None:
        _fail(_("{name}: got None, expected a number (did your function forget to return it?)").format(name=name), hint)
    arr = _checked_array(name, actual, np.shape(actual), hint)
    if arr.size != 1:
        _fail(_("{name}: expected a single number, got an array of shape {shape}").format(name=name, shape=arr.shape),
              hint)
    actual, expected = float(arr.reshape(())), float(to_numpy(expected).reshape(()))
    err = rel_error(actual, expected)
    if err > tol:
        _fail(_("{name}: got {actual}, expected {expected} (relative error {error} > {tol})").format(
            name=name, actual=f"{actual:.6g}", expected=f"{expected:.6g}", error=f"{err:.1e}", tol=f"{tol:.0e}"), hint)


def assert_at_least(name, actual, threshold, hint=None):
    """Fail unless the scalar actual is >= threshold (e.g. an accuracy)."""
    if actual is None:
        _fail(_("{name}: got None, expected a number >= {threshold}").format(name=name, threshold=threshold), hint)
    arr = _checked_array(name, actual, np.shape(actual), hint)
    if arr.size != 1:
        _fail(_("{name}: expected a single number, got an array of shape {shape}").format(name=name, shape=arr.shape),
              hint)
    value = float(arr.reshape(()))
    if value < threshold:
        _fail(_("{name}: {value} < required {threshold}").format(
            name=name, value=f"{value:.4g}", threshold=f"{threshold:.4g}"), hint)
