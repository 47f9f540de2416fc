"""What course notebooks import: gradient checks, clear assertions, offline data, device helpers."""

from course_utils.checks import assert_at_least, assert_close, assert_scalar_close, assert_shape, rel_error
from course_utils.data import CharCorpus, load_cifar10, load_digits
from course_utils.device import get_device, seed_everything
from course_utils.gradcheck import numerical_gradient, numerical_gradient_array

__all__ = [
    "CharCorpus",
    "assert_at_least",
    "assert_close",
    "assert_scalar_close",
    "assert_shape",
    "get_device",
    "load_cifar10",
    "load_digits",
    "numerical_gradient",
    "numerical_gradient_array",
    "rel_error",
    "seed_everything",
]
