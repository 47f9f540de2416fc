"""The warm templates: one process inside the sandbox imports numpy, torch and course_utils once, then
forks one template per worker slot; each template forks one fresh student process per submission.

The zygote runs as the sandbox's root and pid 1 (bubblewrap started by root, no user namespace) and
only reaps once its templates are forked. A template never runs student code itself: it gives each
child a private scratch folder in its slot's own tmpfs (/scratch/<i>), the slot's own unprivileged uid,
rlimits, IPC and network namespaces of its own and a parent-death signal before the child starts
`student_runner`. After each submission it kills every process of that uid, deletes the scratch folder,
empties the uid's keyrings and removes any System V object left in its own IPC namespace
(kernel_objects.py), so nothing of one submission survives into the next; when its worker goes (the
control socket closes) it does the same and exits. CUDA is never touched here: a child that wants a
GPU initialises it itself.

Protocol (one JSON line per message over each slot's unix socket; file descriptors ride along with
"spawn"):
  (ready)                                                           <- {"ok", "ready"} once, unasked
  spawn  {"job", "uid", "limits"} + fds (requests in, answers out)  -> {"ok", "pid"}
  signal {"pid", "signal"}                                          -> {"ok"}
  status {"pid"}                                                    -> {"ok", "status"}
  finish {"job", "uid", "pid"}                                      -> {"ok", "status", "leftovers"}
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

import kernel_objects

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class Slot:
    """Where one template's submissions live: /scratch/<i> (its tmpfs) and /inbox/<i>."""

    def __init__(self, index: int):
        self.scratch = f"/scratch/{index}"
        self.inbox = f"/inbox/{index}"
        self.uids: set[int] = set()  # every uid it forked a student as: swept when the template exits


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


def _copy_inbox(slot: Slot, job: str) -> None:
    source = os.path.join(slot.inbox, job)
    for folder, _, files in os.walk(source):
        target = os.path.relpath(folder, source)
        os.makedirs(target, exist_ok=True)
        for name in files:
            shutil.copyfile(os.path.join(folder, name), os.path.join(target, name))


def _become_student(
    slot: Slot, job: str, uid: int, limits: dict, request_fd: int, answer_fd: int, cpu: int | None = None
) -> None:
    """In the forked child: confine ourselves, then serve the judge. Never returns. cpu: the one its
    worker runs on (pool.worker_cpus), so that judge and student take turns on one core."""
    try:
        if cpu is not None:
            try:
                os.sched_setaffinity(0, {cpu})
            except OSError:  # the CPU went away (a changed cpuset): pinning only saves time
                pass
        os.setsid()
        for name, value in limits.items():
            which = getattr(resource, name)
            resource.setrlimit(which, (value, value))
        workdir = os.path.join(slot.scratch, job)
        os.chdir(workdir)
        kernel_objects.private_ipc_and_network()  # as root, before dropping to the student's uid
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the template
        _copy_inbox(slot, job)
        os.environ.update({"HOME": workdir, "TMPDIR": workdir})
        if "tempfile" in sys.modules:  # the zygote's cached temp dir (/scratch) is not the student's to write
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


def _finish(slot: Slot, job: str, uid: int, pid: int) -> tuple[str, list[str]]:
    """Kill everything the submission started, reap it, remove its scratch folder, empty the uid's
    keyrings and the template's IPC namespace. Returns the exit status and what was left behind (the
    student's own IPC namespace went with its last process; keys and System V objects found here are
    removed, and named so that the worker can record them)."""
    _kill_all_of(uid)
    status = EXIT_STATUS.pop(pid, None)
    shutil.rmtree(os.path.join(slot.scratch, job), ignore_errors=True)
    leftovers = []
    keys = kernel_objects.clear_keyrings(uid)
    if keys:
        leftovers.append(f"{keys} key(s) in the keyrings of uid {uid}" if keys > 0 else "keyrings not checked")
    objects = kernel_objects.sysv_leftovers()
    if objects:
        kernel_objects.remove_sysv(objects)
        leftovers.append(f"System V objects outside the student's namespace: {objects}")
    if _processes_of(uid):
        leftovers.append(f"processes of uid {uid} survived SIGKILL")
    return status or "ended", leftovers


def _kill_all_of(uid: int) -> None:
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


EXIT_STATUS: dict[int, str] = {}


def _wait_gone(pids: list[int], until: float) -> None:
    """Reap our children among the killed `pids` (the template is their subreaper: orphans of a student
    come back to it) and wait, in 1 ms steps, until none is left in /proc; then _kill_all_of looks again."""
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


def serve(control: socket.socket, slot: Slot) -> None:
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
                workdir = os.path.join(slot.scratch, request["job"])
                os.mkdir(workdir, 0o700)
                os.chown(workdir, request["uid"], request["uid"])
                slot.uids.add(request["uid"])
                pid = os.fork()
                if pid == 0:
                    control.close()
                    _become_student(slot, request["job"], request["uid"], request["limits"], request_fd, answer_fd,
                                    request.get("cpu"))  # fmt: skip
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
                status, leftovers = _finish(slot, request["job"], request["uid"], int(request["pid"]))
                reply = {"ok": True, "status": status, "leftovers": leftovers}
            elif op == "status":
                _reap()
                reply = {"ok": True, "status": EXIT_STATUS.get(int(request["pid"]))}
            else:
                reply = {"ok": False}
            control.sendall(json.dumps(reply).encode() + b"\n")


def _template(control: socket.socket, index: int) -> None:
    """In a forked child of the zygote: serve one worker slot until its worker goes. Never returns."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of its students come back to it
        slot = Slot(index)
        control.sendall(b'{"ok": true, "ready": true}\n')
        try:
            serve(control, slot)
        finally:
            for uid in slot.uids:  # the worker went mid-submission: leave nothing of it behind
                _kill_all_of(uid)
    except BaseException:  # noqa: BLE001 -- whatever happens, the child must not return into the zygote
        pass
    os._exit(0)


def main() -> None:
    controls = [socket.socket(fileno=int(fd)) for fd in sys.argv[1].split(",")]
    _preload([name for name in sys.argv[2].split(",") if name])
    try:  # launched at low priority for its imports (warm.IMPORT_NICENESS); students run at normal priority
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass
    for index, control in enumerate(controls):
        if os.fork() == 0:
            for other in controls:
                if other is not control:
                    other.close()
            _template(control, index)
    for control in controls:
        control.close()
    # pid 1 of the sandbox: reap templates (and any orphan of a template that died) until none is left;
    # then the sandbox ends.
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return
        except InterruptedError:
            continue


if __name__ == "__main__":
    main()
