"""How one grading job ended, as a worker reports it to the coordinator: the same five kinds from the
local pool and from Celery (where the value crosses Redis as JSON text)."""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    DONE = "done"  # graded; the payload is the SubmissionResult
    GRADER_ERROR = "grader_error"  # a grader bug cost this submission; the payload records it
    COURSE_ERROR = "course_error"  # the course's own code is broken (payload: why): the batch stops
    REFUSED = "refused"  # a GPU part reached a worker without CUDA (payload: why)
    WORKER_DIED = "worker_died"  # the worker died or hung (payload: why); tried again up to MAX_ATTEMPTS
