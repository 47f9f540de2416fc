"""What one submission leaves in the kernel is gone for the next one graded by the same worker.

Each claim of sandbox/inside/kernel_objects.py's docstring (and the README's "What is per submission" table) has a test
here: System V shared memory, semaphores and message queues and POSIX message queues (a fresh IPC
namespace per student process), keyrings (cleared after each submission: they belong to the uid, which
a worker slot reuses), and loopback (a network namespace per student process, so two students graded at
once cannot talk). Warm path: students forked by one template; cold path: one bubblewrap sandbox each.
The model is test_batch.py's "a monkeypatch in submission 1 is gone in submission 2".
"""

from __future__ import annotations

import pytest

from autograder.grading.student_process import ColdStudentProcess
from autograder.sandbox import confine
from autograder.sandbox.warm import TemplateSandbox, warm_available

# Creates one object of each kind, under the key 0x5eed (SysV) or the name /leak (POSIX), holding data.
LEAVE_BEHIND = r"""
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT = 0o1000
made = {}
shm = libc.shmget(0x5EED, 4096, IPC_CREAT | 0o666)
libc.shmat.restype = ctypes.c_void_p
address = libc.shmat(shm, None, 0)
ctypes.memmove(address, b"secret answers", 14)
made["shm"] = shm >= 0
made["sem"] = libc.semget(0x5EED, 1, IPC_CREAT | 0o666) >= 0
made["msg"] = libc.msgget(0x5EED, IPC_CREAT | 0o666) >= 0
made["mq"] = libc.mq_open(b"/leak", os.O_CREAT | os.O_RDWR, 0o666, None) >= 0
made["key"] = libc.syscall(248, b"user", b"leak", b"secret", 6, ctypes.c_long(-4)) > 0  # add_key to @u
print(sorted(name for name, ok in made.items() if ok))
"""

# Looks for each of them; prints what it finds.
LOOK = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
found = []
if libc.shmget(0x5EED, 0, 0) >= 0: found.append("shm")
if libc.semget(0x5EED, 0, 0) >= 0: found.append("sem")
if libc.msgget(0x5EED, 0) >= 0: found.append("msg")
if libc.mq_open(b"/leak", os.O_RDONLY, 0, None) >= 0: found.append("mq")
if libc.syscall(250, 10, ctypes.c_long(-4), b"user", b"leak", 0) > 0: found.append("key")  # KEYCTL_SEARCH @u
for kind in ("shm", "sem", "msg"):
    if open(f"/proc/sysvipc/{kind}").read().count("\n") > 1: found.append(kind + " table")
print("FOUND", sorted(set(found)))
"""

EVERY_KIND = ["key", "mq", "msg", "sem", "shm"]

needs_root_sandbox = pytest.mark.skipif(
    not warm_available(), reason="per-submission uids and namespaces need root and bubblewrap"
)


def _run(student, code: str) -> str:
    answer = student.run_cell(code, 30, "probe")
    assert answer.get("error") is None, answer["error"]
    return answer["stdout"]


@needs_root_sandbox
def test_ipc_objects_and_keys_of_one_submission_are_gone_for_the_next_warm(tmp_path):
    template = TemplateSandbox([45], preload=["numpy"])
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    try:
        link = template.links[45]
        with link.spawn(inputs) as first:
            assert _run(first, LEAVE_BEHIND).strip() == str(EVERY_KIND)
            seen = _run(first, LOOK)
            assert all(f"'{kind}'" in seen for kind in EVERY_KIND), seen  # the probe sees what exists
        with link.spawn(inputs) as second:
            assert _run(second, LOOK).strip() == "FOUND []"
    finally:
        template.close()


@needs_root_sandbox
def test_ipc_objects_and_keys_of_one_submission_are_gone_for_the_next_cold(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    with ColdStudentProcess(inputs, slot=46) as first:
        assert first.isolation == "bubblewrap"
        assert _run(first, LEAVE_BEHIND).strip() == str(EVERY_KIND)
    with ColdStudentProcess(inputs, slot=46) as second:
        assert _run(second, LOOK).strip() == "FOUND []"


@needs_root_sandbox
def test_two_students_graded_at_once_by_one_template_sandbox_share_nothing(tmp_path):
    """Two slots' students at the same moment: no IPC object, no loopback listener of one is visible to
    the other (each student process has its own IPC and network namespaces)."""
    template = TemplateSandbox([47, 48], preload=["numpy"])
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    listen = (
        "import socket\nserver = socket.socket()\nserver.bind(('127.0.0.1', 47123))\nserver.listen()\n"
        "abstract = socket.socket(socket.AF_UNIX)\nabstract.bind(b'\\0course-leak')\nabstract.listen()\nprint('up')"
    )
    connect = (
        "import socket\nreached = []\n"
        "for family, address in ((socket.AF_INET, ('127.0.0.1', 47123)), (socket.AF_UNIX, b'\\0course-leak')):\n"
        "    try:\n        socket.socket(family).connect(address)\n        reached.append(str(address))\n"
        "    except OSError:\n        pass\n"
        "print('REACHED', reached)"
    )
    try:
        with template.links[47].spawn(inputs) as ada, template.links[48].spawn(inputs) as bob:
            assert _run(ada, LEAVE_BEHIND).strip() == str(EVERY_KIND)
            assert _run(ada, listen).strip() == "up"
            seen = _run(bob, LOOK).strip()
            assert all(kind not in seen for kind in ("shm", "sem", "msg", "mq")), seen  # keys: per uid, see below
            assert _run(bob, connect).strip() == "REACHED []"
            assert _run(ada, connect).strip() != "REACHED []"  # the listener is there, in ada's own namespace
    finally:
        template.close()


@needs_root_sandbox
def test_the_cleanup_clears_the_keyrings_of_the_slot_uid():
    """Keyrings belong to a uid, not to a namespace; slots reuse their uid, so the cleanup empties them."""
    from autograder.sandbox.inside import kernel_objects

    claim = confine.UidClaim(preferred=49)
    try:
        assert kernel_objects.clear_keyrings(claim.uid) >= 0
        assert kernel_objects.clear_keyrings(claim.uid) == 0
    finally:
        claim.release()
