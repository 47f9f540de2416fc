"""Kernel objects that outlive the process that made them, and how a submission is kept from leaving any.

Runs inside the sandbox (the zygote imports it; copied in by file name like wire.py, so it must never
import `autograder`) and outside it (the cold path's cleanup).

What the kernel keeps after every process of a submission is gone, and what is done about it:
- System V shared memory, semaphores and message queues, and POSIX message queues, live in an IPC
  namespace until removed. Each student process gets an IPC namespace of its own (bubblewrap's
  --unshare-ipc for a cold start, `unshare` in the forked child for a warm one): the namespace, and
  everything in it, goes when the submission's last process is killed. The template's own namespace is
  checked after each submission (`sysv_leftovers`) and anything found there is removed.
- Keyrings belong to a uid, not to a namespace: a key added to the user keyring (@u), the user session
  keyring (@us) or the uid's persistent keyring stays for the next submission graded under the same uid.
  `clear_keyrings(uid)` empties them after each submission.
- Sockets (loopback, abstract unix), timerfds, eventfds, inotify watches die with their process; each
  student process also gets a network namespace of its own, so two students graded at the same moment
  cannot talk over loopback either.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
IPC_RMID = 0
SYSV_KINDS = ("shm", "sem", "msg")

SYS_KEYCTL = 250  # x86_64
KEYCTL_CLEAR = 7
KEYCTL_READ = 11
KEYCTL_GET_PERSISTENT = 22
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_USER_SESSION_KEYRING = -5

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
    return result


def private_ipc_and_network() -> None:
    """Move the calling process into a new IPC namespace and a new network namespace (needs root, i.e.
    the zygote's forked child before it drops to the student's uid), with loopback up as bubblewrap
    leaves it for a cold start."""
    _check(_libc.unshare(CLONE_NEWIPC | CLONE_NEWNET), "unshare(CLONE_NEWIPC | CLONE_NEWNET)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def sysv_leftovers() -> list[tuple[str, int]]:
    """The System V IPC objects of the caller's IPC namespace, as (kind, id)."""
    found = []
    for kind in SYSV_KINDS:
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                lines = table.read().splitlines()[1:]
        except OSError:
            continue
        found += [(kind, int(line.split()[1])) for line in lines if line.strip()]
    return found


def remove_sysv(objects: list[tuple[str, int]]) -> None:
    """IPC_RMID each object (root may remove anyone's)."""
    remove = {
        "shm": lambda ident: _libc.shmctl(ident, IPC_RMID, None),
        "sem": lambda ident: _libc.semctl(ident, 0, IPC_RMID),
        "msg": lambda ident: _libc.msgctl(ident, IPC_RMID, None),
    }
    for kind, ident in objects:
        remove[kind](ident)


def _keyctl(*args: int) -> int:
    return _libc.syscall(SYS_KEYCTL, *(ctypes.c_long(arg) for arg in args))


def _links(keyring: int) -> int:
    """How many keys `keyring` links to (KEYCTL_READ of a keyring gives 4 bytes per key); 0 if none."""
    size = _keyctl(KEYCTL_READ, keyring, 0, 0)
    return max(size, 0) // 4


def clear_keyrings(uid: int) -> int:
    """Empty the user, user-session and persistent keyrings of `uid` (as that uid, in a forked child:
    only their owner can reach them). Returns how many keys they held, or -1 if it could not look."""
    pid = os.fork()
    if pid == 0:
        held = 0
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            persistent = _keyctl(KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_USER_KEYRING)
            keyrings = [KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING]
            if persistent > 0:
                keyrings.insert(0, persistent)
                held -= 1  # the persistent keyring itself, just linked into @u by the call above
            for keyring in keyrings:
                held += _links(keyring)
                _keyctl(KEYCTL_CLEAR, keyring)
        except BaseException:  # noqa: BLE001 -- the child must never return into its parent
            os._exit(255)
        os._exit(min(max(held, 0), 254))
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return -1 if code in (255,) or code < 0 else code
