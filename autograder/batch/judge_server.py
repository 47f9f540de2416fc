"""The forkserver that the local pool's workers (each a trusted judge) are forked from.

Its imports are the longest wait before the first submission is graded: the grader, then torch and
torch._dynamo for the judges' ground truth. `course grade` therefore starts it first
thing (start()), before the command imports the grader and reads the source notebooks itself, so that
the two start-ups overlap on the two cores instead of following each other.

Which modules the judges need depends on the assignment (AssignmentSource.judge_imports), which the
command only knows once it has read the source notebooks. So the forkserver works it out itself: its
one preload is this module, which, in the forkserver, reads the course and the assignment from the
environment (PRELOAD_ENV, set only while the forkserver is launched) and imports what that assignment's
judges need. The command's own process imports this module without that variable set: nothing happens.

One forkserver serves a whole process. A process that grades several assignments (the tests, `course
validate --all`) keeps the one started for its first; a worker imports whatever else it needs itself.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import signal
from multiprocessing import forkserver
from pathlib import Path

PRELOAD_ENV = "COURSE_JUDGE_PRELOAD"  # JSON [course root, assignment], for the forkserver only
GRADER_MODULES = ["autograder.grading.grade", "autograder.sandbox.warm", "autograder.grading.judge"]


def context():
    """The multiprocessing context the pool starts its workers with."""
    return multiprocessing.get_context("forkserver")


def start(course_root: Path, assignment: str) -> None:
    """Start this process's forkserver now, preloading what the judges of `assignment` need; nothing
    when it is running already."""
    context().set_forkserver_preload([__name__])
    before = os.environ.get(PRELOAD_ENV)
    os.environ[PRELOAD_ENV] = json.dumps([str(course_root), assignment])
    try:
        forkserver.ensure_running()
    finally:
        if before is None:
            del os.environ[PRELOAD_ENV]
        else:
            os.environ[PRELOAD_ENV] = before


def stop() -> None:
    """End this process's forkserver and multiprocessing's resource tracker now, if it started them: for
    the `course` command as it exits. Left alone, the forkserver (torch imported) sees the command gone and
    then spends a while tearing torch down while it holds the command's stdout and stderr, so
    `course grade | tee log`, a CI log or the benchmark waits for it. Nothing of it is needed by then: the
    workers have been joined."""
    from multiprocessing import resource_tracker

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server._stop()  # closes our end of its alive pipe, reaps it, removes its socket
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if getattr(tracker, "_pid", None) is not None:
        tracker._stop()  # it exits as soon as its pipe closes (a few ms): wait for that


def judge_modules(course_root: str, assignment: str) -> list[str]:
    from autograder.course import Course
    from autograder.grading.grade import AssignmentSource

    return [*GRADER_MODULES, *AssignmentSource.load(Course.load(Path(course_root)), assignment).judge_imports()]


def _preload_in_forkserver() -> None:
    where = os.environ.pop(PRELOAD_ENV, None)  # popped: the workers forked from here do not carry it on
    if where is None:
        return
    try:
        modules = judge_modules(*json.loads(where))
    except Exception:  # noqa: BLE001 -- a broken course: the command reports it, the workers meet it again
        modules = GRADER_MODULES
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 -- a module that fails here fails again, visibly, in the judge
            pass


_preload_in_forkserver()
