"""The judge's end of the student process: start it in the sandbox, send requests, enforce time limits.

Every answer is untrusted data: it is decoded by `wire` (no pickle, numeric arrays only) and anything
else stays in the student process as a handle. A request that runs past its deadline is interrupted
with SIGINT, as Jupyter does, so later cells still run; if the student ignores the interrupt, the whole
sandbox is killed and every later request fails with the reason.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from autograder.sandbox import confine
from autograder.sandbox.inside import kernel_objects, wire

INTERRUPT_GRACE_S = 3.0
START_TIMEOUT_S = 60.0


class StudentGone(Exception):
    """The student process is dead (killed after a timeout, crashed, exited); carries the reason."""


class StudentTimeout(Exception):
    """A request exceeded its time and was interrupted; the student process is still alive."""


class StudentError(Exception):
    """Student code raised while serving a request. Subclassed per exception name (see `student_error`)."""

    def __init__(self, type_name: str, message: str, traceback_text: str):
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.student_traceback = traceback_text


_BUILTIN_ERRORS = (
    {
        name: value
        for name, value in __builtins__.items()
        if isinstance(value, type) and issubclass(value, Exception) and name != "StopIteration"
    }
    if isinstance(__builtins__, dict)
    else {}
)


def student_error(info: dict) -> StudentError:
    """A judge-side exception for an error raised in student code.

    When the name is a builtin exception (ValueError, ...) the result is also an instance of it, so a
    test may write `with pytest.raises(ValueError)`; it never carries student objects.
    """
    type_name = str(info.get("type", "Exception"))[:100]
    base = _BUILTIN_ERRORS.get(type_name)
    cls = type(type_name, (StudentError, base), {}) if base else StudentError
    error = cls.__new__(cls)
    StudentError.__init__(error, type_name, str(info.get("message", ""))[:2000], str(info.get("traceback", "")))
    return error


class StudentProcess:
    """The judge's channel to one student process. Subclasses decide how it is started and stopped."""

    isolation = ""
    gone_reason: str | None = None
    request_fd: int
    answer_fd: int

    def interrupt(self) -> None:
        raise NotImplementedError

    def kill(self, reason: str) -> None:
        raise NotImplementedError

    def _exit_reason(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> StudentProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _close_channel(self) -> None:
        for fd in (self.request_fd, self.answer_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- requests ---------------------------------------------------------------------------------------

    def _wait_readable(self, deadline: float) -> bool:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.answer_fd], [], [], remaining)
            if ready:
                return True

    def request(self, header: dict, buffers: list[bytes] = (), timeout: float = 60.0):
        """Send one request; return (answer header, buffers). Raises StudentGone / StudentTimeout."""
        if self.gone_reason is not None:
            raise StudentGone(self.gone_reason)
        try:
            wire.write_frame(self.request_fd, header, list(buffers))
        except OSError:
            self.kill(self._exit_reason())
            raise StudentGone(self.gone_reason) from None
        deadline = time.monotonic() + timeout
        timed_out = False
        if not self._wait_readable(deadline):
            timed_out = True
            self.interrupt()
            if not self._wait_readable(time.monotonic() + INTERRUPT_GRACE_S):
                self.kill(f"killed after {timeout:g} s: the student code did not stop when interrupted")
                raise StudentGone(self.gone_reason)
        try:
            answer, answer_buffers = wire.read_frame(self.answer_fd)
        except (EOFError, OSError):
            self.kill(self._exit_reason())
            raise StudentGone(self.gone_reason) from None
        except wire.WireError as error:
            self.kill(f"the student process sent an invalid answer ({error})")
            raise StudentGone(self.gone_reason) from None
        if timed_out:
            raise StudentTimeout(f"stopped after {timeout:g} s (time limit)")
        return answer, answer_buffers

    def run_cell(self, code: str, timeout: float, label: str = "") -> dict:
        """Run one student cell. Returns {stdout, stderr, result, error}; error set on timeout too."""
        try:
            answer, buffers = self.request({"op": "run_cell", "code": code, "label": label}, timeout=timeout)
        except StudentTimeout as error:
            return {
                "stdout": "",
                "stderr": "",
                "result": None,
                "error": {"type": "TimeoutError", "message": f"cell {error}", "traceback": ""},
            }
        if not answer.get("ok"):
            raise StudentGone(f"the student process failed to run a cell: {answer.get('error')}")
        value = wire.decode(answer.get("value"), buffers, _no_handles)
        if not isinstance(value, dict):
            raise StudentGone("the student process answered a cell with something that is not a result")
        return {
            "stdout": str(value.get("stdout") or ""),
            "stderr": str(value.get("stderr") or ""),
            "result": value.get("result") if isinstance(value.get("result"), str) else None,
            "error": value.get("error") if isinstance(value.get("error"), dict) else None,
        }


class ColdStudentProcess(StudentProcess):
    """A student process started from scratch: a new bubblewrap sandbox and a new Python."""

    def __init__(self, inputs: Path, limits: confine.Limits | None = None, slot: int = 0, preload: list[str] = ()):
        self.limits = limits or confine.Limits()
        self.workdir = tempfile.TemporaryDirectory(prefix="student-")
        root = Path(self.workdir.name)
        root.chmod(0o755)
        staged = root / "staged"
        confine.stage_runner(staged)
        copy = root / "inputs"
        copy_tree_plain(inputs, copy)

        request_read, self.request_fd = os.pipe()
        self.answer_fd, answer_write = os.pipe()
        wire.widen_pipe(self.request_fd)
        wire.widen_pipe(self.answer_fd)
        self.uid_claim = confine.UidClaim(preferred=slot)
        spec = confine.launch(staged, copy, request_read, answer_write, self.limits, self.uid_claim.uid, preload)
        self.isolation = spec.isolation
        self.stderr_path = root / "stderr.log"
        with open(self.stderr_path, "wb") as stderr:
            self.process = self._start(spec, stderr)
        os.close(request_read)
        os.close(answer_write)
        self.gone_reason: str | None = None
        self.started = time.monotonic()

    @staticmethod
    def _start(spec, stderr) -> subprocess.Popen:
        return subprocess.Popen(
            spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            pass_fds=spec.pass_fds,
            preexec_fn=spec.preexec,
            start_new_session=True,
        )

    # --- life and death ---------------------------------------------------------------------------------

    def _student_pid(self) -> int:
        """The pid to signal: the runner itself (inside bubblewrap it is the child of bwrap)."""
        if self.isolation != "bubblewrap":
            return self.process.pid
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.Error:
            children = []
        return children[0].pid if children else self.process.pid

    def kill(self, reason: str) -> None:
        """Kill the student process and everything it started (inside bubblewrap: its PID namespace)."""
        if self.gone_reason is None:
            self.gone_reason = reason
        for kill in (
            lambda: os.kill(self._student_pid(), signal.SIGKILL),
            lambda: os.killpg(self.process.pid, signal.SIGKILL),
        ):
            try:
                kill()
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        self.kill("finished")
        self._close_channel()
        if self.uid_claim.uid is not None:  # keyrings belong to the uid, which the next submission reuses
            kernel_objects.clear_keyrings(self.uid_claim.uid)
        self.uid_claim.release()
        self.workdir.cleanup()

    def interrupt(self) -> None:
        try:
            os.kill(self._student_pid(), signal.SIGINT)
        except ProcessLookupError:
            pass

    def _last_stderr_line(self) -> str:
        try:
            with open(self.stderr_path, "rb") as log:
                log.seek(max(0, os.path.getsize(self.stderr_path) - 2000))
                lines = log.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f" [{lines[-1][:300]}]" if lines else ""

    def _exit_reason(self) -> str:
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        return describe_exit(self.process.poll()) + self._last_stderr_line()


def describe_exit(code: int | None) -> str:
    """Why a student process ended, from its exit code (negative: killed by that signal)."""
    if code is None:
        return "the student process stopped answering"
    if code < 0:
        name = signal.Signals(-code).name
        if -code == signal.SIGKILL:
            return f"the student process was killed ({name}); it may have run out of memory or processes"
        return f"the student process died from {name}"
    return f"the student process exited with code {code} (sys.exit or os._exit in student code?)"


def _no_handles(tree):
    raise wire.WireError("unexpected object handle")


def copy_tree_plain(source: Path, target: Path) -> None:
    """Copy regular files only (no symlinks, devices or fifos), world-readable, for the sandbox."""
    target.mkdir(parents=True)
    target.chmod(0o755)
    if source is None or not source.is_dir():
        return
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            continue
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(exist_ok=True)
            destination.chmod(0o755)
        elif path.is_file():
            destination.write_bytes(path.read_bytes())
            destination.chmod(0o644)
