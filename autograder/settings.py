"""The grader's settings that are not about one assignment, each read here and only here.

A setting comes from the environment (for a worker, a CI job or a test), else from the course's
nbgrader_config.py (`c.Grader.<name>`) where it has one, else its default:

| setting                        | environment               | nbgrader_config.py        | default                  |
| ------------------------------ | ------------------------- | ------------------------- | ------------------------ |
| Redis URL of the Celery backend| COURSE_BROKER_URL         | c.Grader.broker_url       | redis://127.0.0.1:6379/0 |
| Celery visibility timeout (s)  | COURSE_VISIBILITY_TIMEOUT | -                         | 7200                     |
| run without bubblewrap         | COURSE_NO_BUBBLEWRAP=1    | -                         | off                      |
| pretend to have one CUDA GPU   | COURSE_FAKE_CUDA=1        | -                         | off (tests only)         |

A command-line option (`--broker`) beats all three. Time limits are per assignment: c.TimeLimits, read
by grading/time_limits.py.
"""

from __future__ import annotations

import os

from autograder.course import Course

BROKER_URL_ENV = "COURSE_BROKER_URL"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
VISIBILITY_TIMEOUT_ENV = "COURSE_VISIBILITY_TIMEOUT"
NO_BUBBLEWRAP_ENV = "COURSE_NO_BUBBLEWRAP"
FAKE_CUDA_ENV = "COURSE_FAKE_CUDA"


def broker_url(given: str | None = None, course: Course | None = None) -> str:
    """The Redis URL: the one given (an option), COURSE_BROKER_URL, c.Grader.broker_url, the default."""
    from_config = course.config.Grader.get("broker_url") if course is not None else None
    return given or os.environ.get(BROKER_URL_ENV) or from_config or DEFAULT_BROKER_URL


def visibility_timeout_s() -> int:
    """How long Redis keeps a task a worker took before giving it to another worker: longer than any
    grading, or a slow one would be graded twice."""
    return int(os.environ.get(VISIBILITY_TIMEOUT_ENV, 2 * 3600))


def bubblewrap_turned_off() -> bool:
    return bool(os.environ.get(NO_BUBBLEWRAP_ENV))


def fake_cuda() -> bool:
    """Test-only: a worker started with COURSE_FAKE_CUDA=1 believes it has one CUDA device (a gpu-queue
    worker on a machine without a GPU). Never set it on a real runner."""
    return os.environ.get(FAKE_CUDA_ENV) == "1"
