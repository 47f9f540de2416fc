"""The course server's round trip in a real browser: JupyterHub on 127.0.0.1 with two students and an
instructor (real Linux accounts, PAM logins); the instructor publishes a1; student 1 logs in, fetches a1 in
nbgrader's Assignment List, puts a working solution into the notebook, runs it (the self-check passes) and
submits; student 2 submits the untouched notebook; the instructor collects, grades, writes and returns
feedback with the `course` verbs; student 1 fetches the feedback and sees the score; the instructor's
formgrader lists both students' submissions. Screenshots of each
step are kept in artifacts/browser/server-*.png.

Needs root (accounts, the hub), as `course serve` does; Chromium that cannot be launched is a failure.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest

from autograder.course import REPO_ROOT, Course
from autograder.server import accounts, hub
from tests.servers import wait_until
from tests.test_browser import (
    ARTIFACTS,
    ASSIGNMENT,
    LAB_SETTINGS,
    NOTEBOOK,
    _solved_notebook,
    assert_every_cell_ran,
    count_test_cells,
    public_tests_passed,
    run_all_cells,
)

pytestmark = pytest.mark.browser
COURSE_BIN = str(Path(sys.executable).with_name("course"))


class Hub:
    """`course serve`'s steps (hub.prepare, hub.start_hub) on a copy of the course, on a free loopback port."""

    def __init__(self, base: Path, students: int = 2, **serve_options):
        tag = uuid.uuid4().hex[:5]
        self.students = [f"dlcb-{chr(ord('a') + n)}-{tag}" for n in range(students)]
        self.instructor = f"dlcb-t-{tag}"
        self.base = base
        self.course_root = base / "course"
        self.course_root.mkdir()
        shutil.copy(REPO_ROOT / "nbgrader_config.py", self.course_root / "nbgrader_config.py")
        for folder in ("source", "release"):
            shutil.copytree(REPO_ROOT / folder / ASSIGNMENT, self.course_root / folder / ASSIGNMENT)
        roster = base / "roster.csv"
        roster.write_text("username,name\n" + "".join(f"{name},Student {name}\n" for name in self.students))
        self.port = hub.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings, _ = hub.prepare(Course.load(self.course_root), roster, self.instructor, base / "exchange",
                                       "127.0.0.1", self.port, **serve_options)  # fmt: skip
        state = Path(self.settings.state_dir)
        self.passwords = dict(csv.reader(open(state / "passwords.csv")))
        self.log = state / "hub.log"
        for name in [*self.students, self.instructor]:
            self._quiet_lab(accounts.account(name))
        self.process = hub.start_hub(self.settings, self.log)
        hub.wait_until_serving(self.settings, self.process, self.log)

    @staticmethod
    def _quiet_lab(user: accounts.Account) -> None:
        """No news pop-up over the page, every cell rendered: the student's own lab settings, in their home."""
        for name, values in LAB_SETTINGS.items():
            path = user.home / ".jupyter" / "lab" / "user-settings" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(user.home / ".jupyter")], check=True)

    def course(self, *args: str) -> subprocess.CompletedProcess:
        """An instructor's `course` verb on the course (as root, as the README says)."""
        return subprocess.run([COURSE_BIN, *args, "--course", str(self.course_root)], capture_output=True, text=True,
                              timeout=600)  # fmt: skip

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self, log_name: str = "server-hub.log") -> None:
        hub.stop_hub(self.process)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if self.log.exists():
            shutil.copy(self.log, ARTIFACTS / log_name)
        accounts.remove_accounts([*self.students, self.instructor])


@pytest.fixture(scope="module")
def course_hub():
    if os.geteuid() != 0:
        pytest.fail("the course server's browser test creates Linux accounts and runs JupyterHub: run it as root")
    base = Path(tempfile.mkdtemp(prefix="dlcb-hub-"))
    base.chmod(0o755)  # students' servers reach the exchange inside it
    server = None
    try:
        server = Hub(base)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"server-{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


def log_in(browser, course_hub: Hub, username: str):
    """A fresh browser context logged in through the hub's login form; returns the page on the user's lab."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{course_hub.url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", course_hub.passwords[username])
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(rf"/user/{re.escape(username)}/lab"), timeout=150_000)
    page.wait_for_selector(".jp-LabShell", timeout=120_000)
    return page


def assignment_list(page) -> None:
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Nbgrader$")).click()
    page.click("li[data-command='nbgrader:open-assignment-list']")
    page.locator("#nbgrader-assignment-list").wait_for(state="visible")


def click_in_row(page, list_id: str, label: str, timeout_ms: int = 60_000) -> None:
    row = page.locator(f"#{list_id} .list_item", has_text=ASSIGNMENT).first
    try:
        row.wait_for(state="visible", timeout=timeout_ms)
    except Exception as error:
        listing = page.locator("#nbgrader-assignment-list").inner_text()
        where = shot(page, "failure")
        raise AssertionError(f"no {ASSIGNMENT} in {list_id} (screenshot {where}):\n{listing}") from error
    row.locator("button", has_text=label).click()


def put_file(page, username: str, path: str, notebook: nbformat.NotebookNode) -> None:
    """Write a notebook through JupyterLab's contents API from the page (the user's own session and xsrf)."""
    status = page.evaluate(
        """async ([url, body]) => {
            const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';
            const answer = await fetch(url, {method: 'PUT', headers: {'Content-Type': 'application/json',
                                             'X-XSRFToken': decodeURIComponent(xsrf)}, body});
            return answer.status;
        }""",
        [f"/user/{username}/api/contents/{path}",
         json.dumps({"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(notebook))})],
    )  # fmt: skip
    assert status in (200, 201), f"saving {path} as {username}: HTTP {status}"


def test_publish_fetch_submit_collect_grade_and_feedback_round_trip(course_hub, browser):
    first, second = course_hub.students
    published = course_hub.course("publish", ASSIGNMENT)
    assert published.returncode == 0, published.stderr

    # Student 1: fetch, solve, run the self-check, submit.
    page = log_in(browser, course_hub, first)
    try:
        assignment_list(page)
        click_in_row(page, "released_assignments_list", "Fetch")
        page.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first.wait_for(state="visible")
        shot(page, "1-fetched")
        home = accounts.account(first).home
        released = home / ASSIGNMENT / NOTEBOOK
        wait_until(released.is_file, 30, f"the fetched notebook at {released}")
        solved = _solved_notebook(released, REPO_ROOT / "solutions" / ASSIGNMENT / NOTEBOOK)
        put_file(page, first, f"{ASSIGNMENT}/{NOTEBOOK}", solved)
        page.goto(f"{course_hub.url}/user/{first}/lab/workspaces/solve/tree/{ASSIGNMENT}/{NOTEBOOK}?reset")
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-CodeCell", timeout=60_000)
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=120_000)
        prompts = run_all_cells(page)
        shot(page, "2-selfcheck")
        assert_every_cell_ran(prompts)
        passed, total = public_tests_passed(page)
        assert passed == total == count_test_cells(), f"student 1's self-check: {passed} of {total}"
        page.keyboard.press("Control+s")
        assignment_list(page)
        click_in_row(page, "fetched_assignments_list", "Submit")
        page.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT).first.wait_for(state="visible")
        shot(page, "3-submitted")
    finally:
        page.context.close()

    # Student 2: fetch and submit the untouched notebook.
    page = log_in(browser, course_hub, second)
    try:
        assignment_list(page)
        click_in_row(page, "released_assignments_list", "Fetch")
        click_in_row(page, "fetched_assignments_list", "Submit")
        page.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT).first.wait_for(state="visible")
    finally:
        page.context.close()

    # The instructor: collect, grade, feedback, return it.
    for verb in (["collect", ASSIGNMENT], ["grade", ASSIGNMENT], ["feedback", ASSIGNMENT],
                 ["return-feedback", ASSIGNMENT]):  # fmt: skip
        done = course_hub.course(*verb)
        assert done.returncode == 0, f"course {' '.join(verb)}: {done.stdout}\n{done.stderr}\n{course_hub.log_tail()}"
    untouched = (course_hub.course_root / "feedback" / second / ASSIGNMENT / "feedback.html").read_text()
    assert re.search(r"Autograded score:\s*<b>0 / ", untouched), "student 2's untouched notebook must score 0"

    # Student 1 fetches the feedback and reads the score.
    page = log_in(browser, course_hub, first)
    try:
        assignment_list(page)
        click_in_row(page, "submitted_assignments_list", "Fetch Feedback")
        feedback = wait_until(lambda: next(iter(sorted(
            (accounts.account(first).home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))), None),
            60, "the fetched feedback file")  # fmt: skip
        relative = feedback.relative_to(accounts.account(first).home)
        page.goto(f"{course_hub.url}/user/{first}/files/{relative}")
        text = page.locator("body").inner_text()
        shot(page, "4-feedback")
        fetched = (accounts.account(first).home / ASSIGNMENT / NOTEBOOK).read_text()
        for seen in (text, fetched, feedback.read_text()):
            assert "HIDDEN TESTS" not in seen and "1001" not in seen, "hidden tests reached the student"
        score = re.search(r"Autograded score:\s*([\d.]+) / ([\d.]+)", text)
        assert score and score.group(1) == score.group(2), f"student 1's feedback: {text[:600]}"
    finally:
        page.context.close()

    # The instructor's formgrader opens the graded course (the gradebook `course grade` wrote as root).
    page = log_in(browser, course_hub, course_hub.instructor)
    try:
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Nbgrader$")).click()
        page.click("li[data-command='nbgrader:open-formgrader']")
        frame = page.frame_locator("iframe").first
        row = frame.locator("tr", has_text=ASSIGNMENT).first
        row.wait_for(timeout=60_000)
        shot(page, "5-formgrader")
        cells = [text.strip() for text in row.locator("td").all_inner_texts()]
        assert "2" in cells, f"formgrader's row for {ASSIGNMENT} does not count 2 submissions: {cells}"
    finally:
        page.context.close()
