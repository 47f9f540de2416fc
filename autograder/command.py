"""How a `course` command runs and ends: exit codes, errors as one line, no interpreter teardown.

Exit codes: 0 done; 1 done, with problems the command reports (a verb raises SystemExit(1)); 2 the course
or the request is wrong (CourseError: one line) or the grader itself failed (any other exception: one
line and its traceback), never because of what a submission does (grading records that).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import traceback
from typing import NoReturn

import click

from autograder.course import CourseError


class CourseGroup(click.Group):
    """The verbs' group: an exception that is not a CourseError is the grader's own failure: exit 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (CourseError, click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:  # noqa: BLE001 -- a bug or a broken machine
            traceback.print_exc()
            click.echo(f"error: the grader failed: {type(error).__name__}: {error}", err=True)
            raise SystemExit(2) from None


def run(group: click.Group) -> NoReturn:
    """Run the command line through `group`, then end the process (exit_without_teardown)."""
    code: object = 0
    try:
        group(standalone_mode=True)
    except SystemExit as done:
        code = done.code
    except CourseError as error:
        click.echo(f"error: {error}", err=True)
        code = 2
    finally:
        if "autograder.batch.judge_server" in sys.modules:  # a verb that started the local pool's forkserver
            sys.modules["autograder.batch.judge_server"].stop()
    exit_without_teardown(code)


def exit_without_teardown(code: object) -> NoReturn:
    """End the command once its work is done: wait for its own threads, run the atexit hooks, flush the
    output, and leave without the interpreter's teardown of every imported module (torch, nbgrader...),
    which the command does not need and a CI job or an instructor would wait for."""
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"), as the interpreter would print it
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a reader that went away (`course grade | head`): nothing left to tell it
            code = code or 1
    os._exit(code)
