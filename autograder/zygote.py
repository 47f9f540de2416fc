"""The warm template: a process inside the sandbox that has imported numpy, torch and course_utils once
and forks one fresh student process per submission.

It runs as the sandbox's root (bubblewrap started by root, no user namespace), never runs student
code itself, and gives each child a private scratch folder, the worker slot's own unprivileged uid,
rlimits and a parent-death signal before the child starts `student_runner`. After each submission it
kills every process of that uid and deletes the scratch folder, so nothing of one submission survives
into the next. CUDA is never touched here: a child that wants a GPU initialises it itself.

Protocol (one JSON line per message over a unix socket; file descriptors ride along with "spawn"):
  spawn  {"job", "uid", "limits"} + fds (requests in, answers out)  -> {"ok", "pid"}
  signal {"pid", "signal"}                                          -> {"ok"}
  finish {"job", "uid", "pid"}                                      -> {"ok", "status"}
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import sys
import time

SCRATCH = "/scratch"
INBOX = "/inbox"


def _preload(modules: list[str]) -> None:
    """Import what the assignment's notebooks import (torch: CPU side only; CUDA initialises lazily)."""
    import importlib

    import student_runner  # noqa: F401
    import wire  # noqa: F401

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 -- a module that fails here fails again, visibly, in the student's cell
            pass


def _copy_inbox(job: str) -> None:
    source = os.path.join(INBOX, job)
    for folder, _, files in os.walk(source):
        target = os.path.relpath(folder, source)
        os.makedirs(target, exist_ok=True)
        for name in files:
            shutil.copyfile(os.path.join(folder, name), os.path.join(target, name))


def _become_student(job: str, uid: int, limits: dict, request_fd: int, answer_fd: int) -> None:
    """In the forked child: confine ourselves, then serve the judge. Never returns."""
    try:
        os.setsid()
        for name, value in limits.items():
            which = getattr(resource, name)
            resource.setrlimit(which, (value, value))
        workdir = os.path.join(SCRATCH, job)
        os.chdir(workdir)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the template
        _copy_inbox(job)
        os.environ.update({"HOME": workdir, "TMPDIR": workdir})
        if "tempfile" in sys.modules:  # the template's cached temp dir (/scratch) is not the student's to write
            sys.modules["tempfile"].tempdir = None
        sys.path.insert(0, workdir)
        import student_runner

        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sys.argv = ["student"]
        student_runner.Runner(request_fd, answer_fd).serve()
    except BaseException:  # noqa: BLE001 -- whatever happens, the child must not return into the template
        pass
    os._exit(0)


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                for line in status:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(entry))
                        break
        except OSError:
            continue
    return pids


def _finish(job: str, uid: int, pid: int) -> str:
    """Kill everything the submission started, reap it, remove its scratch folder."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = _processes_of(uid)
        if not alive:
            break
        for other in alive:
            try:
                os.kill(other, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_gone(alive, until=min(deadline, time.monotonic() + 0.05))
    status = EXIT_STATUS.pop(pid, None)
    shutil.rmtree(os.path.join(SCRATCH, job), ignore_errors=True)
    return status or "ended"


EXIT_STATUS: dict[int, str] = {}


def _wait_gone(pids: list[int], until: float) -> None:
    """Reap our children among the killed `pids` and wait, in 1 ms steps, until none is left in /proc (one
    reparented elsewhere is reaped by the sandbox's init); then _finish looks again for the uid's processes."""
    while True:
        _reap()
        if not any(os.path.exists(f"/proc/{pid}") for pid in pids) or time.monotonic() > until:
            return
        time.sleep(0.001)


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if os.WIFSIGNALED(status):
            EXIT_STATUS[pid] = f"signal:{os.WTERMSIG(status)}"
        else:
            EXIT_STATUS[pid] = f"exit:{os.WEXITSTATUS(status)}"


def serve(control: socket.socket) -> None:
    while True:
        _reap()
        message, fds, _, _ = socket.recv_fds(control, 65536, 4)
        if not message:
            return
        for line in message.splitlines():
            request = json.loads(line)
            op = request["op"]
            if op == "spawn":
                request_fd, answer_fd = fds
                workdir = os.path.join(SCRATCH, request["job"])
                os.mkdir(workdir, 0o700)
                os.chown(workdir, request["uid"], request["uid"])
                pid = os.fork()
                if pid == 0:
                    control.close()
                    _become_student(request["job"], request["uid"], request["limits"], request_fd, answer_fd)
                os.close(request_fd)
                os.close(answer_fd)
                reply = {"ok": True, "pid": pid}
            elif op == "signal":
                try:
                    os.kill(int(request["pid"]), int(request["signal"]))
                except ProcessLookupError:
                    pass
                reply = {"ok": True}
            elif op == "finish":
                _reap()
                reply = {"ok": True, "status": _finish(request["job"], request["uid"], int(request["pid"]))}
            elif op == "status":
                _reap()
                reply = {"ok": True, "status": EXIT_STATUS.get(int(request["pid"]))}
            else:
                reply = {"ok": False}
            control.sendall(json.dumps(reply).encode() + b"\n")


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    _preload([name for name in sys.argv[2].split(",") if name])
    try:  # launched at low priority for its imports (warm.IMPORT_NICENESS); students run at normal priority
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass
    control.sendall(b'{"ok": true, "ready": true}\n')
    serve(control)


if __name__ == "__main__":
    main()
