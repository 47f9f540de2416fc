"""Warm student processes: one long-lived sandbox holding warm templates (`zygote.py`): numpy, torch
and course_utils are imported once, then each worker slot gets a template of its own that forks a fresh
student process per submission.

Isolation is the same as a cold start: the same bubblewrap sandbox (no network, read-only system,
nothing of the course visible), a private scratch folder per submission in the slot's own tmpfs, the
slot's own uid (so other slots' students cannot read its inbox or scratch, nor signal its processes),
the same rlimits, and every process of that uid killed when the submission ends. Warm templates need
the grader to run as root (to give students a uid of their own); otherwise `course grade` uses cold
sandboxes.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.grading.student_process import StudentGone, StudentProcess, describe_exit
from autograder.sandbox import confine
from autograder.sandbox.inside import wire

START_TIMEOUT_S = 120.0
IMPORT_NICENESS = 10  # the template's priority while it imports (zygote.main resets it to 0)


def warm_available() -> bool:
    return os.geteuid() == 0 and confine.bubblewrap_problem() is None


@dataclass
class TemplateHandoff:
    """A slot's running template handed to the grading worker that will use it; the sandbox stays its
    launcher's (LocalPool launches one for its first workers, see batch/pool.py). Picklable: multiprocessing
    passes the socket to the worker."""

    slot: int
    uid: int | None
    inbox: Path
    limits: confine.Limits
    assignment: str  # what it was launched for (with limits.gpu); a worker needing another closes the link
    control: socket.socket


class TemplateLink:
    """A worker's side of its slot's warm template: the control socket and the slot's inbox folder. The
    sandbox that holds the template belongs to whoever launched it (TemplateSandbox below): the pool,
    which hands the link over (TemplateHandoff), or the worker itself."""

    def __init__(self, slot: int, uid: int | None, inbox: Path, limits: confine.Limits, control: socket.socket):
        self.slot = slot
        self.uid = uid
        self.inbox = inbox
        self.limits = limits
        self.control = control
        self.reader = control.makefile("rb")
        self.jobs = 0
        self.ready = False  # the zygote imports numpy/torch while the worker warms its judge
        self.broken = False

    @classmethod
    def adopt(cls, handoff: TemplateHandoff) -> TemplateLink:
        return cls(handoff.slot, handoff.uid, handoff.inbox, handoff.limits, handoff.control)

    def wait_ready(self) -> None:
        if not self.ready:
            self._answer(timeout=START_TIMEOUT_S)
            self.ready = True

    def _answer(self, timeout: float = 30.0) -> dict:
        self.control.settimeout(timeout)
        try:
            line = self.reader.readline()
        except (TimeoutError, OSError):
            line = b""
        if not line:
            self.close()
            raise RuntimeError(f"the warm template of worker {self.slot} stopped answering")
        return json.loads(line)

    def ask(self, message: dict, fds: tuple[int, ...] = ()) -> dict:
        self.wait_ready()
        data = json.dumps(message).encode() + b"\n"
        if fds:
            socket.send_fds(self.control, [data], list(fds))
        else:
            self.control.sendall(data)
        return self._answer()

    @property
    def alive(self) -> bool:
        """False once the template has gone: its end of the socket closed (readable, with nothing to read)."""
        if self.broken:
            return False
        try:
            readable, _, _ = select.select([self.control], [], [], 0)
            return not readable or self.control.recv(1, socket.MSG_PEEK) != b""
        except (OSError, ValueError):
            return False

    def spawn(self, inputs: Path, cpu: int | None = None) -> WarmStudentProcess:
        """A fresh student process for one submission; cpu: pin it to that CPU (its worker's)."""
        self.jobs += 1
        job = f"job{self.jobs}"
        shutil.copytree(inputs, self.inbox / job)
        for path in [self.inbox / job, *(self.inbox / job).rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return WarmStudentProcess(self, job, cpu)

    def close(self) -> None:
        """Close our end: the template kills whatever its students left and exits."""
        self.broken = True
        self.reader.close()
        self.control.close()


class TemplateSandbox:
    """One bubblewrap sandbox holding a warm template for each of `slots`, launched (and, on close,
    killed) by this process. numpy/torch are imported once for all of them: a second worker's template
    costs a fork, not another second of imports. Each slot gets its own uid, inbox folder (readable by
    that uid only), scratch tmpfs and control socket: `links[slot]`."""

    def __init__(self, slots: list[int], limits: confine.Limits | None = None, preload: list[str] = ()):
        self.limits = limits or confine.Limits()
        self.uid_claims = [confine.UidClaim(preferred=slot) for slot in slots]
        self.folder = tempfile.TemporaryDirectory(prefix="templates-")
        root = Path(self.folder.name)
        root.chmod(0o755)
        confine.stage_runner(root / "staged")
        (root / "inbox").mkdir()
        (root / "inbox").chmod(0o755)
        self.links: dict[int, TemplateLink] = {}
        theirs = []
        for index, (slot, claim) in enumerate(zip(slots, self.uid_claims, strict=True)):
            inbox = root / "inbox" / str(index)  # /inbox/<index> in the sandbox, where template <index> looks
            inbox.mkdir(mode=0o700)
            if claim.uid is not None:
                os.chown(inbox, claim.uid, claim.uid)
            ours, their_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.links[slot] = TemplateLink(slot, claim.uid, inbox, self.limits, ours)
            theirs.append(their_end)
        fds = [end.fileno() for end in theirs]
        argv = confine.template_argv(root / "staged", root / "inbox", fds, self.limits, list(preload))
        # At low priority while it imports numpy/torch, so that where cores are short (start-up on 2 cores)
        # the forkserver, which the judges wait for, goes first; the zygote takes priority 0 again before it
        # forks the templates.
        self.process = subprocess.Popen(
            ["nice", "-n", str(IMPORT_NICENESS), *argv],
            env=confine.environment("/scratch"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=fds,
            start_new_session=True,
        )
        for end in theirs:
            end.close()

    def handoff(self, slot: int, assignment: str) -> TemplateHandoff:
        """For the worker that will use slot's template. After the worker has started, call
        forget_link(slot): from then on this process only owns the sandbox (and kills it on close)."""
        link = self.links[slot]
        return TemplateHandoff(slot, link.uid, link.inbox, link.limits, assignment, link.control)

    def forget_link(self, slot: int) -> None:
        self.links.pop(slot).close()

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        for link in self.links.values():
            link.close()
        self.links = {}
        for claim in self.uid_claims:
            claim.release()
        self.folder.cleanup()


class WarmStudentProcess(StudentProcess):
    def __init__(self, template: TemplateLink, job: str, cpu: int | None = None):
        self.template = template
        self.job = job
        self.isolation = "bubblewrap"
        self.gone_reason = None
        self.started = time.monotonic()
        request_read, self.request_fd = os.pipe()
        self.answer_fd, answer_write = os.pipe()
        wire.widen_pipe(self.request_fd)
        wire.widen_pipe(self.answer_fd)
        limits = confine.rlimits(template.limits)
        try:
            reply = template.ask(
                {"op": "spawn", "job": job, "uid": template.uid, "limits": limits, "cpu": cpu},
                fds=(request_read, answer_write),
            )
        finally:
            os.close(request_read)
            os.close(answer_write)
        self.pid = reply["pid"]
        self.exit_status: str | None = None
        self.leftovers: list[str] = []  # what the template's cleanup found and removed (kernel_objects.py)

    def interrupt(self) -> None:
        self.template.ask({"op": "signal", "pid": self.pid, "signal": int(signal.SIGINT)})

    def kill(self, reason: str) -> None:
        if self.gone_reason is None:
            self.gone_reason = reason
        if self.exit_status is None and self.template.alive:
            reply = self.template.ask({"op": "finish", "job": self.job, "uid": self.template.uid, "pid": self.pid})
            self.exit_status = reply["status"]
            self.leftovers = list(reply.get("leftovers", []))
            if any("survived" in leftover for leftover in self.leftovers):
                self.template.close()  # never reuse a uid with live processes: the worker starts a new template

    def _exit_reason(self) -> str:
        status = self.template.ask({"op": "status", "pid": self.pid})["status"] if self.template.alive else None
        for _ in range(20):
            if status:
                break
            time.sleep(0.05)
            status = self.template.ask({"op": "status", "pid": self.pid})["status"]
        if not status:
            return describe_exit(None)
        kind, _, number = status.partition(":")
        return describe_exit(-int(number) if kind == "signal" else int(number))

    def close(self) -> None:
        try:
            self.kill("finished")
        except (RuntimeError, OSError) as error:
            raise StudentGone(f"the warm template failed while cleaning up: {error}") from None
        finally:
            self._close_channel()
            shutil.rmtree(self.template.inbox / self.job, ignore_errors=True)
