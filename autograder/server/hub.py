"""Set up and run the course server: accounts from the roster, the exchange, each role's Jupyter
configuration, and JupyterHub with its proxy, in the foreground until stopped (Ctrl-C or SIGTERM).

Everything the hub writes lives in the course's `.hub/` folder (0700, root's): the hub's database and
cookie secret, the passwords of the accounts it created, and its log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder.course import REPO_ROOT, Course, CourseError
from autograder.server import accounts
from autograder.server.exchange import Exchange
from autograder.server.roster import read_roster

# Defaults of `course serve` (its options override the first two).
IDLE_TIMEOUT_S = 3600  # a user's server idle this long is stopped (0: never); their files stay
PROCESS_MEMORY_BYTES = 6 * 1024**3  # RLIMIT_DATA of each process of a user's server (JupyterLab, each kernel)
USER_PROCESSES = 2048  # RLIMIT_NPROC of each user: processes and threads (a fork bomb stops here)

CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")
PROXY = REPO_ROOT / ".venv" / "node_modules" / ".bin" / "configurable-http-proxy"
PROXY_INSTALL = "npm install --prefix .venv configurable-http-proxy@5.3.0 (scripts/setup.sh does it)"
STUDENT_LAB_OFF = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                   "@jupyter/nbgrader:course-list"]  # fmt: skip
STUDENT_SERVER_OFF = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list"]


@dataclass(frozen=True)
class HubSettings:
    course_root: str
    state_dir: str
    exchange: str
    course_id: str
    instructor: str
    students: list[str]
    ip: str
    port: int
    hub_port: int
    proxy_api_port: int
    proxy: str
    singleuser: str
    student_config: str
    instructor_config: str
    idle_timeout_s: int = IDLE_TIMEOUT_S
    process_memory_bytes: int = PROCESS_MEMORY_BYTES
    user_processes: int = USER_PROCESSES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)


def write_role_configs(settings: HubSettings) -> None:
    """Each role's /etc/jupyter: nbgrader's exchange and course for both; for students, the instructor's
    extensions off; for the instructor, formgrader on the course directory, with its autograde refused
    (student code runs only in the grader's sandbox, never as the instructor)."""
    common = (
        f"c.Exchange.root = {settings.exchange!r}\n"
        f"c.CourseDirectory.course_id = {settings.course_id!r}\n"
    )
    student = Path(settings.student_config)
    _write(student / "nbgrader_config.py", "c = get_config()  # noqa: F821\n" + common)
    _write(student / "jupyter_server_config.json",
           json.dumps({"ServerApp": {"jpserver_extensions": dict.fromkeys(STUDENT_SERVER_OFF, False)}}, indent=2))
    _write(student / "labconfig" / "page_config.json",
           json.dumps({"disabledExtensions": dict.fromkeys(STUDENT_LAB_OFF, True)}, indent=2))  # fmt: skip
    instructor = Path(settings.instructor_config)
    # Formgrader is a page of the instructor's own server shown in a frame of JupyterLab: the single-user
    # server's default policy (frame-ancestors 'none') would block it.
    _write(instructor / "jupyter_server_config.json",
           json.dumps({"ServerApp": {"tornado_settings": {"headers": {
               "Content-Security-Policy": "frame-ancestors 'self'"}}}}, indent=2))  # fmt: skip
    _write(
        instructor / "nbgrader_config.py",
        "c = get_config()  # noqa: F821\n" + common
        + f"c.CourseDirectory.root = {settings.course_root!r}\n"
        + "c.Autograde.autograde_preprocessors = ['autograder.server.formgrader.RefuseAutograde']\n",
    )


def _check_address_free(ip: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((ip, port))
        except OSError as error:
            raise CourseError(f"cannot serve on {ip}:{port}: {error.strerror}") from None


def prepare(
    course: Course, roster: Path, instructor: str, exchange_root: Path, ip: str, port: int,
    idle_timeout_s: int = IDLE_TIMEOUT_S, process_memory_bytes: int = PROCESS_MEMORY_BYTES,
) -> tuple[HubSettings, list[str]]:
    """Check everything, then create what the server needs: the roster read whole first (nothing is
    created from a bad one), then accounts (removed again if a later step fails), exchange, configuration."""
    if os.geteuid() != 0:
        raise CourseError("`course serve` needs root: it creates Linux accounts and runs each user's server as them")
    for tool in ("bwrap", "setpriv", "useradd"):
        if shutil.which(tool) is None:
            raise CourseError(f"`course serve` needs {tool}; run scripts/setup.sh as root")
    if not PROXY.exists():
        raise CourseError(f"JupyterHub's proxy is not installed: {PROXY_INSTALL}")
    _check_address_free(ip, port)
    if idle_timeout_s < 0 or process_memory_bytes < 256 * 1024**2:
        raise CourseError("the idle timeout must be 0 (never) or more, the memory per process at least 256 MiB")
    students = [member.username for member in read_roster(roster, instructor)]
    state = course.root / ".hub"
    state.mkdir(mode=0o700, exist_ok=True)
    state.chmod(0o700)
    created = accounts.create_accounts([instructor, *students], state / "passwords.csv")
    try:
        instructor_account = accounts.account(instructor)
        exchange = Exchange(exchange_root, course.course_id)
        exchange.prepare()
        os.chown(course.root, instructor_account.uid, instructor_account.gid)
        course.root.chmod(0o700)  # source/, solutions, the gradebook: the instructor's (and root's) only
        settings = HubSettings(
            course_root=str(course.root),
            state_dir=str(state),
            exchange=str(exchange_root),
            course_id=course.course_id,
            instructor=instructor,
            students=students,
            ip=ip,
            port=port,
            hub_port=free_port(),
            proxy_api_port=free_port(),
            proxy=str(PROXY),
            singleuser=str(Path(sys.executable).with_name("jupyterhub-singleuser")),
            student_config=str(state / "jupyter-student"),
            instructor_config=str(state / "jupyter-instructor"),
            idle_timeout_s=idle_timeout_s,
            process_memory_bytes=process_memory_bytes,
        )
        write_role_configs(settings)
        (state / "settings.json").write_text(json.dumps(asdict(settings), indent=2))
    except BaseException:
        accounts.remove_accounts(created)
        raise
    return settings, created


def start_hub(settings: HubSettings, log: Path) -> subprocess.Popen:
    """JupyterHub (and through it the proxy) as a child process, logging to `log`."""
    env = {**os.environ, "COURSE_HUB_SETTINGS": str(Path(settings.state_dir) / "settings.json"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(CONFIG_FILE)],
            cwd=settings.state_dir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def wait_until_serving(settings: HubSettings, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Return once the hub answers on its address; CourseError with the log's last line if it exits or
    stays silent (a port in use, a broken configuration, the proxy missing)."""
    url = f"http://{'127.0.0.1' if settings.ip in ('0.0.0.0', '') else settings.ip}:{settings.port}/hub/api"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    stop_hub(process)
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    last = lines[-1].strip()[:300] if lines else "(no output)"
    raise CourseError(f"JupyterHub did not start on {settings.ip}:{settings.port}: {last} (log: {log})")


def stop_hub(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM: JupyterHub stops the users' servers and its proxy, then exits."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def load_settings(course: Course) -> HubSettings:
    """The settings `course serve` saved for this course (exchange, roster, ports)."""
    path = course.root / ".hub" / "settings.json"
    try:
        return HubSettings(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise CourseError(f"{path}: no course server set up for this course; run `course serve` first") from None
    except (ValueError, TypeError) as error:
        raise CourseError(f"{path}: unreadable server settings ({error}); run `course serve` again") from None
