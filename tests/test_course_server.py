"""The course server's pieces with real Linux accounts: the roster, accounts, the exchange (publish, collect,
return feedback) against hostile submissions, and what a student can read, tested as that student, both
through file permissions and inside the sandbox each user's JupyterLab runs in.

These tests create Linux users (named dlct-*, removed afterwards): they need root, as `course serve` does.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

from autograder.course import REPO_ROOT, Course, CourseError, hand_to_owner
from autograder.server import accounts, hub
from autograder.server.exchange import Exchange, collect, feedback_checksum, publish, return_feedback
from autograder.server.roster import read_roster
from autograder.server.spawner import sandbox_command
from tests.helpers import SQUARES_OK, submit
from tests.servers import wait_until

A1 = "a1_backprop"


@pytest.fixture(scope="module", autouse=True)
def needs_root():
    if os.geteuid() != 0:
        pytest.fail("the course server's tests create Linux accounts: run them as root (CI does)")


def _roster(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("username\nalice\nbob\nalice\n", r"line 4: 'alice' is listed twice \(first on line 2\)"),
        ("username\nAlice\n", r"line 2: 'Alice' is not a valid user name"),
        ("username\n../etc\n", r"line 2: '\.\./etc' is not a valid user name"),
        ("username\nroot\n", r"line 2: 'root' is a system account"),
        ("username\nteacher\n", r"line 2: 'teacher' is the instructor's account"),
        ("name\nAlice\n", r"needs a header row with a 'username' column"),
        ("", r"needs a header row"),
    ],
)
def test_a_bad_roster_is_refused_whole_with_file_and_line(tmp_path, text, message):
    with pytest.raises(CourseError, match=message):
        read_roster(_roster(tmp_path, text), instructor="teacher")


def test_a_good_roster_lists_students_in_order(tmp_path):
    members = read_roster(_roster(tmp_path, "username,name\nalice,Alice A\nbob,\n"), instructor="teacher")
    assert [(m.username, m.name) for m in members] == [("alice", "Alice A"), ("bob", "")]


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    """Three real accounts (two students, one instructor), private homes, removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    names = {"alice": f"dlct-a-{tag}", "mallory": f"dlct-m-{tag}", "teacher": f"dlct-t-{tag}"}
    passwords = tmp_path_factory.mktemp("accounts") / "passwords.csv"
    created = accounts.create_accounts(list(names.values()), passwords)
    try:
        assert sorted(created) == sorted(names.values())
        yield {role: accounts.account(name) for role, name in names.items()}
    finally:
        accounts.remove_accounts(created)


def test_accounts_get_private_homes_and_their_passwords_stay_private(users, tmp_path):
    for user in users.values():
        assert (user.home.stat().st_mode & 0o777) == 0o700, f"{user.home} is readable by others"
    passwords = tmp_path / "p.csv"
    created = accounts.create_accounts([users["alice"].username], passwords)
    assert created == [] and not passwords.exists(), "an existing account is neither re-created nor re-passworded"


def test_a_failed_account_run_removes_what_it_created(tmp_path):
    name = f"dlct-x-{uuid.uuid4().hex[:6]}"
    with pytest.raises(CourseError, match="useradd"):
        accounts.create_accounts([name, "bad name with spaces"], tmp_path / "p.csv")
    assert accounts.account(name) is None, "the account created before the failure was left behind"


def as_user(user: accounts.Account, *argv: str) -> subprocess.CompletedProcess:
    """Run a command as `user` (their uid, gid and groups), natively: the file permissions' wall."""
    return subprocess.run(
        ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", *argv],
        capture_output=True, text=True, cwd="/",
    )  # fmt: skip


@pytest.fixture
def served(users):
    """A course (a1 released) owned by the instructor, 0700, and a prepared exchange in a world-traversable
    folder (pytest's own temporary folders are private to root), as `course serve` leaves them."""
    base = Path(tempfile.mkdtemp(prefix="dlct-server-"))
    base.chmod(0o755)
    try:
        yield _serve(users, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _serve(users, base: Path) -> tuple[Course, Exchange]:
    root = base / "course"
    root.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    for folder in ("source", "release"):
        shutil.copytree(REPO_ROOT / folder / A1, root / folder / A1)
    os.chown(root, users["teacher"].uid, users["teacher"].gid)
    root.chmod(0o700)
    exchange = Exchange(base / "exchange", "dl-course")
    exchange.prepare()
    return Course.load(root), exchange


def submit_as(user: accounts.Account, exchange: Exchange, name: str, files: dict[str, str]) -> Path:
    """What nbgrader's submit does, as the student: a folder in inbound/ with the files."""
    entry = exchange.inbound / name
    script = f"mkdir {shlex.quote(str(entry))} && cd {shlex.quote(str(entry))}" + "".join(
        f" && printf %s {shlex.quote(content)} > {shlex.quote(file)}" for file, content in files.items()
    )
    done = as_user(user, "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    return entry


def _uids(users) -> dict[str, int]:
    return {users[role].username: users[role].uid for role in ("alice", "mallory")}


def test_what_root_writes_in_the_instructors_course_becomes_theirs(users, served):
    """So that formgrader, running as the instructor, can write the gradebook `course grade` (root) made."""
    course, _ = served
    teacher = users["teacher"]
    (course.root / "gradebook.db").write_text("")
    (course.autograded_dir / "alice").mkdir(parents=True)
    (course.autograded_dir / "alice" / "a.ipynb").write_text("{}")
    hand_to_owner(course)
    for path in (course.root / "gradebook.db", course.autograded_dir / "alice" / "a.ipynb"):
        assert (path.stat().st_uid, path.stat().st_gid) == (teacher.uid, teacher.gid), path
    assert (course.root / "source").stat().st_uid == 0, "only what the verbs write changes hands"


def test_the_exchange_verbs_refuse_an_exchange_that_was_never_set_up(tmp_path):
    course = Course.load(REPO_ROOT)
    with pytest.raises(CourseError, match="no exchange for course 'dl-course' here; `course serve` creates it"):
        publish(course, Exchange(tmp_path / "missing", "dl-course"), A1)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    with pytest.raises(CourseError, match="no course server set up for this course"):
        hub.load_settings(Course.load(tmp_path))


def test_collect_takes_each_students_latest_submission_with_its_timestamp(users, served):
    course, exchange = served
    alice = users["alice"]
    publish(course, exchange, A1)
    submit_as(alice, exchange, f"{alice.username}+{A1}+2026-12-01 10:00:00.000000 UTC+r1",
              {"a1_backprop.ipynb": "first", "timestamp.txt": "2026-12-01 10:00:00.000000 UTC"})  # fmt: skip
    submit_as(alice, exchange, f"{alice.username}+{A1}+2026-12-02 09:30:00.000000 UTC+r2",
              {"a1_backprop.ipynb": "second", "timestamp.txt": "2026-12-02 09:30:00.000000 UTC"})  # fmt: skip
    done = collect(course, exchange, A1, _uids(users))
    target = course.submitted_dir / alice.username / A1
    assert done.copied == [alice.username] and not done.problems, done
    assert (target / "a1_backprop.ipynb").read_text() == "second"
    assert (target / "timestamp.txt").read_text() == "2026-12-02 09:30:00.000000 UTC"
    again = collect(course, exchange, A1, _uids(users))
    assert again.copied == [] and again.unchanged == [alice.username]


def test_collect_ignores_a_submission_made_in_another_students_name(users, served):
    course, exchange = served
    alice, mallory = users["alice"], users["mallory"]
    name = f"{alice.username}+{A1}+2026-12-03 00:00:00.000000 UTC+zz"
    submit_as(mallory, exchange, name, {"a1_backprop.ipynb": "x"})
    done = collect(course, exchange, A1, _uids(users))
    assert done.copied == [] and not (course.submitted_dir / alice.username).exists()
    assert any(f"named for {alice.username} but put there by uid {mallory.uid}" in p for p in done.problems), done


def test_collect_never_follows_a_link_planted_in_a_submission(users, served):
    course, exchange = served
    mallory = users["mallory"]
    secret = course.root / "gradebook-secret.txt"
    secret.write_text("instructor only")
    entry = submit_as(mallory, exchange, f"{mallory.username}+{A1}+2026-12-03 01:00:00.000000 UTC+l1",
                      {"a1_backprop.ipynb": "mine"})  # fmt: skip
    assert as_user(mallory, "ln", "-s", str(secret), str(entry / "stolen.txt")).returncode == 0
    assert as_user(mallory, "ln", "-s", "/etc", str(entry / "etc")).returncode == 0
    linked = exchange.inbound / f"{mallory.username}+{A1}+2026-12-04 00:00:00 UTC+l2"
    assert as_user(mallory, "ln", "-s", str(entry), str(linked)).returncode == 0
    done = collect(course, exchange, A1, _uids(users))
    target = course.submitted_dir / mallory.username / A1
    assert sorted(p.name for p in target.iterdir()) == ["a1_backprop.ipynb", "timestamp.txt"]
    assert any("stolen.txt: left out (a symbolic link)" in p for p in done.problems), done.problems
    assert any("etc: left out (a symbolic link)" in p for p in done.problems), done.problems
    assert any("not a folder (a link or a file)" in p for p in done.problems), done.problems


def test_a_course_folder_a_user_made_in_the_exchange_is_refused(users):
    base = Path(tempfile.mkdtemp(prefix="dlct-exchange-"))
    base.chmod(0o755)
    try:
        exchange = Exchange(base / "exchange", "dl-course")
        exchange.root.mkdir(mode=0o1777)
        exchange.root.chmod(0o1777)
        assert as_user(users["mallory"], "mkdir", str(exchange.course_dir)).returncode == 0
        with pytest.raises(CourseError, match=f"belongs to uid {users['mallory'].uid}, not root"):
            exchange.prepare()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_collect_reports_names_off_the_roster_and_bad_timestamps(users, served):
    course, exchange = served
    alice = users["alice"]
    submit_as(alice, exchange, f"nobody+{A1}+2026-12-03 00:00:00 UTC+q", {"a1_backprop.ipynb": "x"})
    submit_as(alice, exchange, f"{alice.username}+{A1}+yesterday+q", {"a1_backprop.ipynb": "x"})
    done = collect(course, exchange, A1, _uids(users))
    assert any("'nobody' is not on the roster" in p for p in done.problems), done.problems
    assert any("'yesterday' is not a timestamp" in p for p in done.problems), done.problems


def test_a_student_reads_only_what_is_theirs(users, served):
    """As alice (file permissions alone): the release yes; the course, inbound's listing, feedback's listing,
    mallory's home and mallory's returned feedback (without its name) no."""
    course, exchange = served
    alice, mallory = users["alice"], users["mallory"]
    publish(course, exchange, A1)
    submit_as(mallory, exchange, f"{mallory.username}+{A1}+2026-12-03 02:00:00.000000 UTC+m",
              {"a1_backprop.ipynb": "mallory's work", "submission_secret.txt": "s3cret"})  # fmt: skip
    collect(course, exchange, A1, _uids(users))
    page = course.root / "feedback" / mallory.username / A1 / "feedback.html"
    page.parent.mkdir(parents=True)
    page.write_text("mallory: 12 / 90")
    returned, problems = return_feedback(course, exchange, A1)
    assert returned == [mallory.username] and not problems
    feedback_file = exchange.feedback / f"{feedback_checksum('s3cret', 'a1_backprop')}.html"
    assert feedback_file.read_text() == "mallory: 12 / 90"

    assert as_user(alice, "cat", str(exchange.outbound / A1 / "a1_backprop.ipynb")).returncode == 0
    mallorys_submission = exchange.inbound / f"{mallory.username}+{A1}+2026-12-03 02:00:00.000000 UTC+m"
    for argv in (["ls", str(course.root)], ["cat", str(course.root / "source" / A1 / "a1_backprop.ipynb")],
                 ["ls", str(exchange.inbound)], ["ls", str(exchange.feedback)], ["ls", str(mallory.home)],
                 ["rm", "-rf", str(mallorys_submission)], ["touch", str(exchange.outbound / A1 / "planted.ipynb")],
                 ["mkdir", str(exchange.course_dir / "other")], ["rm", "-rf", str(exchange.course_dir)]):  # fmt: skip
        done = as_user(alice, *argv)
        assert done.returncode != 0 and "Permission denied" in done.stderr, f"alice could run {argv}: {done}"
    assert mallorys_submission.is_dir()


def test_inside_a_users_sandbox_only_their_home_and_the_exchange_exist(users, served):
    """What each user's JupyterLab runs in: the same command as the spawner's, with a probe for a server."""
    course, exchange = served
    alice = users["alice"]
    config = course.root.parent / "jupyter-student"
    config.mkdir()
    config.chmod(0o755)
    binds = [(str(alice.home), str(alice.home), True), (str(exchange.root), str(exchange.root), True)]
    probe = (
        "import os, sys, course_utils, numpy\n"
        "print(os.getuid(), sorted(os.listdir('/home')))\n"
        f"print(os.path.exists({str(course.root)!r}), os.path.exists('/root/.ssh'),"
        f" os.path.exists({str(REPO_ROOT / 'source')!r}))\n"
        f"open({str(alice.home / 'note.txt')!r}, 'w').write('mine')\n"
    )  # fmt: skip
    done = subprocess.run([*sandbox_command(alice.username, binds, str(config)), sys.executable, "-c", probe],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == f"{alice.uid} ['{alice.home.name}']", lines
    assert lines[1] == "False False False", "the course, root's files and the repository's sources must not be there"
    assert (alice.home / "note.txt").read_text() == "mine"


def test_serving_on_a_taken_port_is_one_line_and_creates_nothing():
    """`course serve` on a port already in use: exit 2, one line, no account created."""
    base = Path(tempfile.mkdtemp(prefix="dlct-serve-"))
    base.chmod(0o755)
    names = [f"dlct-s-{uuid.uuid4().hex[:5]}", f"dlct-i-{uuid.uuid4().hex[:5]}"]
    try:
        root = base / "course"
        root.mkdir()
        shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
        roster = base / "roster.csv"
        roster.write_text(f"username\n{names[0]}\n")
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            done = subprocess.run(
                [str(Path(sys.executable).with_name("course")), "serve", "--roster", str(roster), "--instructor",
                 names[1], "--exchange", str(base / "exchange"), "--port", str(port), "--course", str(root)],
                capture_output=True, text=True, timeout=180,
            )  # fmt: skip
        assert done.returncode == 2, done
        assert done.stderr == f"error: cannot serve on 127.0.0.1:{port}: Address already in use\n", done
        assert all(accounts.account(name) is None for name in names) and not (base / "exchange").exists()
    finally:
        accounts.remove_accounts(names)
        shutil.rmtree(base, ignore_errors=True)


def test_a_hub_that_exits_at_start_is_reported_with_its_last_log_line(tmp_path):
    log = tmp_path / "hub.log"
    log.write_text("[I] starting\n[E] Failed to bind hub to http://127.0.0.1:8081/hub/\n")
    process = subprocess.Popen(["false"])
    blank = dict.fromkeys(hub.HubSettings.__dataclass_fields__, "")
    settings = hub.HubSettings(**blank | {"ip": "127.0.0.1", "port": 1})
    with pytest.raises(CourseError, match=r"JupyterHub did not start on 127.0.0.1:1: \[E\] Failed to bind hub"):
        hub.wait_until_serving(settings, process, log, timeout=30)


def test_formgrader_autograde_under_the_instructors_configuration_runs_no_student_code(released, tmp_path):
    """nbgrader's autograde (formgrader's button) with the server's instructor configuration stops with the
    reason before any cell of the submission runs: students' code would run as the instructor."""
    marker = tmp_path / "student-code-ran"
    folder = submit(released, "ps1", "mallory", {"squares": f"open({str(marker)!r}, 'w').close()\n" + SQUARES_OK})
    settings = hub.HubSettings(**dict.fromkeys(hub.HubSettings.__dataclass_fields__, "") | {
        "exchange": str(tmp_path / "exchange"), "course_id": "dl-course", "course_root": str(released.root),
        "student_config": str(tmp_path / "student"), "instructor_config": str(tmp_path / "instructor")})  # fmt: skip
    hub.write_role_configs(settings)
    env = {**os.environ, "JUPYTER_CONFIG_PATH": settings.instructor_config}
    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    for argv in (["generate_assignment", "ps1", "--force"], ["autograde", "ps1", "--student", "mallory"]):
        done = subprocess.run([nbgrader, *argv], cwd=released.root, env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    assert folder.is_dir() and not marker.exists(), "nbgrader autograde ran the student's code"
    assert "Autograding from formgrader is turned off on this server" in done.stdout + done.stderr, done


def _log_in(url: str, username: str, password: str) -> None:
    """A PAM login through the hub's form, as a browser does it; the hub then starts the user's server."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{url}/hub/login", timeout=30).read()
    xsrf = next(cookie.value for cookie in jar if cookie.name == "_xsrf")
    form = urllib.parse.urlencode({"username": username, "password": password, "_xsrf": xsrf}).encode()
    with contextlib.suppress(urllib.error.HTTPError):  # the redirects end at the lab, which wants a browser
        opener.open(f"{url}/hub/login", form, timeout=120).read()


def _servers_of(uid: int) -> list[psutil.Process]:
    """The user's jupyterhub-singleuser processes (their JupyterLab)."""
    found = []
    for process in psutil.process_iter(["uids", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if process.info["uids"].real == uid and any("jupyterhub-singleuser" in part
                                                        for part in process.info["cmdline"] or []):
                found.append(process)
    return found


def test_an_idle_server_is_stopped_and_every_user_process_has_its_limits():
    """`course serve --idle-timeout --memory`: a student logs in and leaves; their server runs with the memory
    and task limits, and the idle culler stops it once it has been idle for the timeout."""
    from tests.test_server_browser import Hub

    base = Path(tempfile.mkdtemp(prefix="dlct-idle-"))
    base.chmod(0o755)
    server = None
    try:
        server = Hub(base, students=1, idle_timeout_s=10, process_memory_bytes=2 * 1024**3)
        name = server.students[0]
        student = accounts.account(name)
        _log_in(server.url, name, server.passwords[name])
        lab = wait_until(lambda: _servers_of(student.uid), 120, "the student's server to start")[0]
        limits = Path(f"/proc/{lab.pid}/limits").read_text()
        assert re.search(rf"Max data size\s+{2 * 1024**3}\s+{2 * 1024**3}\s+bytes", limits), limits
        assert re.search(r"Max processes\s+2048\s+2048", limits), limits
        started = time.monotonic()
        wait_until(lambda: not _servers_of(student.uid), 120, "the idle culler to stop the server")
        assert time.monotonic() - started >= 5, "stopped before it had been idle for the timeout"
        assert "Culling server" in server.log_tail(100_000), server.log_tail()
    finally:
        if server is not None:
            server.stop("server-idle-hub.log")
        shutil.rmtree(base, ignore_errors=True)
