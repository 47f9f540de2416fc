"""JupyterHub's local process spawner, with each user's JupyterLab inside bubblewrap.

The hub (root) starts bubblewrap, which mounts a private file system view, then `setpriv` drops to the
user's uid with no capabilities and no way to gain privileges before JupyterLab starts. Inside, the user
sees: the system's /usr, the Python installation and virtualenv (read-only, at their own paths), the
course's `course_utils` (what notebooks import), the jupyter configuration of their role at /etc/jupyter,
their own home and nbgrader's exchange. Other users' homes, the course's source/, the gradebook and the
instructor's files are not there at all; file permissions (private homes, the exchange's modes) stand
behind that as a second wall. The network namespace is shared: the hub's proxy reaches the server on
127.0.0.1.
"""

from __future__ import annotations

import pwd
import shutil
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Integer, Unicode

from autograder.course import REPO_ROOT
from autograder.sandbox import confine
from autograder.server.hub import PROCESS_MEMORY_BYTES, USER_PROCESSES


def sandbox_command(
    username: str, binds: list[tuple[str, str, bool]], config_dir: str,
    process_memory_bytes: int = PROCESS_MEMORY_BYTES, user_processes: int = USER_PROCESSES,
) -> list[str]:
    """bubblewrap + prlimit + setpriv: run what follows as `username`, seeing only the listed (source, target,
    writable) binds besides the system, the Python installation and `config_dir` at /etc/jupyter; each
    process may use `process_memory_bytes` (RLIMIT_DATA: a kernel that asks for more gets a MemoryError,
    the others go on; RLIMIT_AS would break `import torch`) and the user `user_processes` tasks."""
    user = pwd.getpwnam(username)
    argv = [
        shutil.which("bwrap") or "bwrap",
        "--die-with-parent",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--perms", "1777", "--tmpfs", "/tmp",
        "--dev", "/dev",
        "--proc", "/proc",
        *confine.system_binds(),
        "--ro-bind", "/etc/passwd", "/etc/passwd",
        "--ro-bind", "/etc/group", "/etc/group",
        *confine.python_binds(),
        "--ro-bind", str(REPO_ROOT / "course_utils"), str(REPO_ROOT / "course_utils"),
        "--ro-bind", config_dir, "/etc/jupyter",
    ]  # fmt: skip
    for source, target, writable in binds:
        for parent in reversed(Path(target).parents):
            if str(parent) != "/":
                argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--bind" if writable else "--ro-bind", source, target]
    return [
        *argv,
        "--chdir", user.pw_dir,
        "--",
        shutil.which("prlimit") or "prlimit",
        f"--data={process_memory_bytes}", f"--nproc={user_processes}", "--core=0",
        "--",
        shutil.which("setpriv") or "setpriv",
        f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
    ]  # fmt: skip


class SandboxedSpawner(LocalProcessSpawner):
    """Each user's single-user server in `sandbox_command`'s view (students and the instructor alike)."""

    exchange = Unicode(help="nbgrader's exchange folder (read and written by everyone's server)").tag(config=True)
    course_root = Unicode(help="The course directory: only the instructor's server sees it").tag(config=True)
    instructor = Unicode(help="The instructor's user name").tag(config=True)
    student_config = Unicode(help="Jupyter configuration folder for students (their /etc/jupyter)").tag(config=True)
    instructor_config = Unicode(help="Jupyter configuration folder for the instructor").tag(config=True)
    singleuser = Unicode(help="The jupyterhub-singleuser command of the course's Python").tag(config=True)
    process_memory_bytes = Integer(PROCESS_MEMORY_BYTES, help="RLIMIT_DATA of each user process").tag(config=True)
    user_processes = Integer(USER_PROCESSES, help="RLIMIT_NPROC of each user").tag(config=True)

    def make_preexec_fn(self, name):
        """Stay root until bubblewrap has mounted the view: setpriv drops to the user inside it."""
        return None

    async def start(self):
        name = self.user.name
        home = pwd.getpwnam(name).pw_dir
        binds = [(home, home, True), (self.exchange, self.exchange, True)]
        if name == self.instructor:
            binds += [(self.course_root, self.course_root, True), (str(REPO_ROOT / "autograder"),
                      str(REPO_ROOT / "autograder"), False)]  # fmt: skip
            config = self.instructor_config
            self.notebook_dir = self.course_root
        else:
            config = self.student_config
        self.cmd = [*sandbox_command(name, binds, config, self.process_memory_bytes, self.user_processes),
                    self.singleuser]
        return await super().start()
