"""Numerical gradients by centred differences, to check hand-written backward passes.

    df/dx_i  ~=  (f(x + h e_i) - f(x - h e_i)) / (2h)

The error of the centred difference is O(h^2), so with float64 and h = 1e-5 an analytic gradient that is
right agrees to about 1e-8 relative error; one that is wrong is usually off by 1e-2 or more.
"""

import numpy as np


def numerical_gradient(f, x, h=1e-5, num_checks=None, seed=0):
    """Gradient of a scalar function f at x, one coordinate at a time.

    f: callable taking no arguments that reads x (it is perturbed in place) and returns a scalar
    x: float64 array of any shape; every perturbation is undone before the next one
    num_checks: None to estimate every coordinate; an int k to estimate k random coordinates only
    Returns grad (same shape as x) if num_checks is None, else (grad_at_idx, idx) where
    idx is a list of k index tuples into x and grad_at_idx has shape (k,).
    """
    if num_checks is None:
        indices = list(np.ndindex(x.shape))
    else:
        rng = np.random.default_rng(seed)
        flat = rng.choice(x.size, size=min(num_checks, x.size), replace=False)
        indices = [np.unravel_index(i, x.shape) for i in flat]

    grad = np.zeros(len(indices))
    for k, ix in enumerate(indices):
        old = x[ix]
        x[ix] = old + h
        f_plus = float(f())
        x[ix] = old - h
        f_minus = float(f())
        x[ix] = old  # restore
        grad[k] = (f_plus - f_minus) / (2 * h)

    if num_checks is None:
        return grad.reshape(x.shape)
    return grad, [tuple(int(i) for i in ix) for ix in indices]


def numerical_gradient_array(f, x, dout, h=1e-5):
    """Gradient of sum(f(x) * dout) with respect to x, for an array-valued f.

    This is what a backward pass computes: dout is the upstream gradient dL/df, and the result is
    dL/dx = sum_j dL/df_j * df_j/dx.
    f: callable taking no arguments that reads x (perturbed in place); returns an array shaped like dout
    x: float64 array, restored after each perturbation
    Returns dx, same shape as x.
    """
    dx = np.zeros_like(x, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = np.array(f(), dtype=np.float64)  # copy: f may return a view of its own buffer
        x[ix] = old - h
        f_minus = np.array(f(), dtype=np.float64)
        x[ix] = old  # restore
        dx[ix] = np.sum((f_plus - f_minus) * dout) / (2 * h)
    return dx
