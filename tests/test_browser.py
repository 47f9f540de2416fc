"""The student's side, end to end in a real browser: JupyterLab on loopback, Debian's headless Chromium
driven by Playwright, a released notebook run with Run All Cells, the self-check's verdicts read off the
page. Screenshots of every case are kept in artifacts/browser/.

Select these tests with `pytest -m browser`. Chromium that cannot be launched is a failure, not a skip:
scripts/setup.sh installs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest

from autograder.authoring.release import release
from autograder.course import REPO_ROOT, Course
from autograder.notebook import cells

pytestmark = pytest.mark.browser

ASSIGNMENT = "a1_backprop"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
ARTIFACTS = REPO_ROOT / "artifacts" / "browser"
TOKEN = "course-browser-test"
COURSE_ID = "dl-course"
SERVER_START_S = 60
RUN_ALL_S = 150
RUN_ALL_LONG_S = 400  # a8 and a9 train small models on the CPU
# Run All on the solution in the browser: a1 and the two assignments added last (training tricks, NLP).
SOLVED_IN_BROWSER = [ASSIGNMENT, "a8_training", "a9_nlp"]

# JupyterLab user settings for the test server: no news/update pop-up over the notebook, and every cell
# rendered (not virtualised), so the whole notebook is in the DOM and in the screenshots.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _solved_notebook(release_path: Path, solution_path: Path) -> nbformat.NotebookNode:
    """The released notebook with every solution cell's source taken from the solution notebook."""
    nb = nbformat.read(release_path, as_version=4)
    solution = {cells.grade_id(c): c.source for c in nbformat.read(solution_path, as_version=4).cells}
    replaced = 0
    for cell in nb.cells:
        if cells.role(cell) == "solution" and cell.cell_type == "code":
            cell.source = solution[cells.grade_id(cell)]
            replaced += 1
    assert replaced, f"no solution cells found in {release_path}"
    return nb


class JupyterLab:
    """`jupyter lab` on 127.0.0.1 with its own config, data, runtime, settings and home under `base`."""

    def __init__(self, base: Path, root: Path):
        self.base, self.root = base, root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "jupyter-lab.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        settings = self.base / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ)
        for var, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),  # the venv's own etc/jupyter (nbgrader's extensions) still applies
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("HOME", "home"),
        ]:
            env[var] = str(self.base / sub)
            (self.base / sub).mkdir(exist_ok=True)
        env.pop("JUPYTER_PATH", None)
        env.pop("JUPYTER_CONFIG_PATH", None)
        # One compute thread per kernel, as in the grader's sandbox: `make test` runs two test processes on two
        # cores, and a kernel with a thread per core fights the other process (a8's Run All: 37 s alone, 121 s).
        env["OMP_NUM_THREADS"] = "1"
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={self.base / 'workspaces'}",
        ]  # fmt: skip
        self.log = open(self.log_path, "w")
        # Same process group as pytest: a Ctrl-C stops the server too.
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/api/status?token={TOKEN}", timeout=2) as r:
                    if r.status == 200:
                        return
            time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not answer within {SERVER_START_S} s:\n{self.log_tail()}")

    def kernel_processes(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(self.proc.pid).children(recursive=True)
            return [p for p in children if "ipykernel_launcher" in " ".join(p.cmdline())]
        return []

    def api(self, method: str, path: str):
        request = urllib.request.Request(f"{self.url}/api/{path}?token={TOKEN}", method=method)
        with urllib.request.urlopen(request, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for kernel in self.api("GET", "kernels"):
            self.api("DELETE", f"kernels/{kernel['id']}")

    def stop(self) -> None:
        """SIGTERM (the server shuts its kernels down), then SIGKILL whatever of it is left."""
        if self.proc is None:
            return
        family = []
        with contextlib.suppress(psutil.Error):
            family = psutil.Process(self.proc.pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _, alive = psutil.wait_procs(family, timeout=5)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        self.log.close()
        self.proc = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "course"
    shutil.copytree(REPO_ROOT / "release" / ASSIGNMENT, root / ASSIGNMENT)
    solved = _solved_notebook(
        REPO_ROOT / "release" / ASSIGNMENT / NOTEBOOK, REPO_ROOT / "solutions" / ASSIGNMENT / NOTEBOOK
    )
    (root / "solved").mkdir()
    nbformat.write(solved, root / "solved" / NOTEBOOK)
    for assignment in SOLVED_IN_BROWSER[1:]:
        notebook = f"{assignment}.ipynb"
        solved = _solved_notebook(REPO_ROOT / "release" / assignment / notebook,
                                  REPO_ROOT / "solutions" / assignment / notebook)  # fmt: skip
        nbformat.write(solved, root / "solved" / notebook)
    # nbgrader's assignment list reads an exchange: the assignment is released there (outbound) and, being in
    # the server's root folder too, listed as downloaded.
    exchange = base / "exchange"
    shutil.copytree(REPO_ROOT / "release" / ASSIGNMENT, exchange / COURSE_ID / "outbound" / ASSIGNMENT)
    (root / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\nc.Exchange.root = {str(exchange)!r}\n"
    )
    # a1 released in Chinese (the course's translation), blank, in its own folder: zh/a1_backprop.ipynb
    zh_course = base / "zh-course"
    zh_course.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", zh_course)
    shutil.copytree(REPO_ROOT / "source" / ASSIGNMENT, zh_course / "source" / ASSIGNMENT)
    release(Course.load(zh_course), ASSIGNMENT, execute_solutions=False, language="zh")
    shutil.copytree(zh_course / "release-zh" / ASSIGNMENT, root / "zh")
    server = JupyterLab(base, root)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser, lab):
    """A fresh browser page; its kernels are shut down afterwards, so each test starts with none."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
        lab.shutdown_kernels()


def screenshot(page, name: str, whole_notebook: bool = True) -> Path:
    """The page, by default stretched to the open notebook's scroll height so the whole notebook is in it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if not whole_notebook:
        page.screenshot(path=path)
        return path
    outer = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    height = page.evaluate(
        """outer => {
            const panel = document.querySelector(outer);
            return panel ? panel.scrollHeight - panel.clientHeight + window.innerHeight : 0;
        }""",
        outer,
    )
    size = page.viewport_size
    if height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(height, 30_000)})
        page.evaluate("outer => { document.querySelector(outer).scrollTop = 0; }", outer)
        page.wait_for_timeout(500)
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(size)
    return path


def cell_report(page) -> str:
    """Each code cell's prompt, first source line and output text, for failure messages."""
    rows = page.eval_on_selector_all(
        ".jp-Notebook .jp-CodeCell",
        """cells => cells.map(c => ({
            prompt: (c.querySelector('.jp-InputPrompt') || {}).textContent || '',
            source: (c.querySelector('.jp-InputArea-editor .cm-line') || {}).textContent || '',
            output: (c.querySelector('.jp-OutputArea') || {}).innerText || '',
        }))""",
    )
    lines = []
    for row in rows:
        lines.append(f"{row['prompt'].strip() or '[?]:'} {row['source'][:70]}")
        lines.extend(f"      | {line}" for line in row["output"].strip().splitlines()[:12])
    return "\n".join(lines)


@contextlib.contextmanager
def evidence(page, lab: JupyterLab, name: str):
    """On any failure inside: a screenshot `<name>-failure.png`, and the cells' outputs in the message."""
    try:
        yield
    except Exception as e:
        try:
            shot, report = screenshot(page, f"{name}-failure"), cell_report(page)
        except Exception as page_error:
            shot, report = "(none)", f"(the page could not be read: {page_error})"
        raise AssertionError(
            f"{e}\n\nscreenshot: {shot}\n\ncells (prompt, first line, output):\n{report}\n\n"
            f"jupyter lab log (tail):\n{lab.log_tail(1500)}"
        ) from e


def open_notebook(page, lab: JupyterLab, path: str, workspace: str) -> None:
    """Open `path` alone, in a fresh JupyterLab workspace (a shared one would reopen earlier tests' tabs)."""
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{path}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-CodeCell", timeout=60_000)
    # The kernel has started and is ready when the status bar says so.
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=60_000)


def run_all_cells(page, timeout_s: float = RUN_ALL_S) -> list[str]:
    """Run > Run All Cells from the menu bar; wait until nothing is queued or running and the kernel is idle.
    Returns each code cell's prompt ('[12]:', or '[ ]:' for a cell that never ran)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.click("li[data-command='runmenu:run-all']")
    prompts_js = "els => els.map(e => e.textContent.trim())"
    deadline = time.monotonic() + timeout_s
    settled = 0
    while time.monotonic() < deadline:
        prompts = page.eval_on_selector_all(".jp-Notebook .jp-CodeCell .jp-InputPrompt", prompts_js)
        busy = "[*]:" in prompts or page.locator(".jp-StatusBar-TextItem", has_text="| Idle").count() == 0
        settled = 0 if busy else settled + 1
        if settled >= 3:  # idle on three polls in a row: not a pause between two queued cells
            return prompts
        time.sleep(0.5)
    raise AssertionError(f"Run All Cells still running after {timeout_s} s")


def assert_every_cell_ran(prompts: list[str]) -> None:
    never = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
    assert prompts and not never, (
        f"Run All Cells stopped: code cells {never} of {len(prompts)} never ran (Run All stops at a cell that "
        "raises, unless the cell is tagged `raises-exception`)"
    )


def selfcheck_rows(page) -> list[dict]:
    """Every row of every self-check table: its status (pass, fail, error), its text, and its last column,
    where the message goes."""
    return page.eval_on_selector_all(
        ".jp-OutputArea table.course-selfcheck tr",
        """rows => rows.filter(r => r.querySelector('td.pass, td.fail, td.error')).map(r => ({
            status: r.querySelector('td.pass, td.fail, td.error').className,
            text: r.innerText.trim(),
            message: r.querySelector('td:last-child').innerText.trim(),
        }))""",
    )


def public_tests_passed(page) -> tuple[int, int]:
    text = page.locator(".jp-OutputArea").all_inner_texts()
    found = re.findall(r"Public tests passed: (\d+) of (\d+)", "\n".join(text))
    assert len(found) == 1, f"expected one 'Public tests passed: X of Y' in the outputs, found {found}"
    return int(found[0][0]), int(found[0][1])


def count_test_cells(assignment: str = ASSIGNMENT) -> int:
    nb = nbformat.read(REPO_ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    return sum(cell.cell_type == "code" and cells.role(cell) == "test" for cell in nb.cells)


def assert_kernel_is_the_venv_python(lab: JupyterLab) -> None:
    kernels = lab.kernel_processes()
    assert kernels, "no ipykernel process under the jupyter lab server"
    for k in kernels:
        assert k.cmdline()[0] == sys.executable, f"kernel runs {k.cmdline()[0]}, not the venv's {sys.executable}"


def test_blank_release_shows_failing_selfchecks(lab, page):
    with evidence(page, lab, "blank"):
        open_notebook(page, lab, f"{ASSIGNMENT}/{NOTEBOOK}", "blank")
        prompts = run_all_cells(page)
        screenshot(page, "blank")
        assert_every_cell_ran(prompts)
        rows = selfcheck_rows(page)
        # Unwritten functions raise NotImplementedError: their checks say ERROR (or FAIL), each with its message.
        failing = [r for r in rows if r["status"] in ("fail", "error")]
        assert failing, f"no failing self-check row in the blank notebook; rows: {rows}"
        for r in failing:
            assert r["message"], f"a failing self-check row has no message: {r}"
        passed, total = public_tests_passed(page)
        assert total == count_test_cells() and passed < total, f"blank notebook: {passed} of {total} passed"


def test_the_chinese_release_speaks_chinese_in_jupyterlab(lab, page):
    """The zh release of a1, blank: prose, the self-check's table and its messages are Chinese."""
    with evidence(page, lab, "zh-blank"):
        open_notebook(page, lab, f"zh/{NOTEBOOK}", "zh-blank")
        prompts = run_all_cells(page)
        screenshot(page, "zh-blank")
        assert_every_cell_ran(prompts)
        assert "作业" in page.locator(".jp-MarkdownOutput").first.inner_text()
        rows = selfcheck_rows(page)
        failing = [r for r in rows if r["status"] in ("fail", "error")]
        assert failing and all(re.search(r"[\u4e00-\u9fff]", r["message"]) for r in failing), failing[:3]
        text = "\n".join(page.locator(".jp-OutputArea").all_inner_texts())
        found = re.findall(r"公开测试通过：(\d+) / (\d+)", text)
        assert found and int(found[0][1]) == count_test_cells() and int(found[0][0]) < int(found[0][1]), found
        page.locator("table.course-selfcheck").last.screenshot(path=ARTIFACTS / "zh-selfcheck-table.png")


@pytest.mark.parametrize("assignment", SOLVED_IN_BROWSER)
def test_solution_passes_every_selfcheck(lab, page, assignment):
    name = "solution" if assignment == ASSIGNMENT else f"solution-{assignment}"
    with evidence(page, lab, name):
        open_notebook(page, lab, f"solved/{assignment}.ipynb", name)
        prompts = run_all_cells(page, RUN_ALL_S if assignment == ASSIGNMENT else RUN_ALL_LONG_S)
        assert_kernel_is_the_venv_python(lab)
        screenshot(page, name)
        assert_every_cell_ran(prompts)
        rows = selfcheck_rows(page)
        assert rows, "no self-check rows in the solved notebook's outputs"
        not_passing = [r for r in rows if r["status"] != "pass"]
        assert not not_passing, f"self-checks not passing with the solution: {not_passing}"
        passed, total = public_tests_passed(page)
        assert passed == total == count_test_cells(assignment), f"solution: {passed} of {total} public tests passed"


def test_nbgrader_extension_loads(lab, page):
    with evidence(page, lab, "nbgrader"):
        open_notebook(page, lab, f"{ASSIGNMENT}/{NOTEBOOK}", "nbgrader")
        validate = page.locator(".jp-NotebookPanel-toolbar .validate-button")
        validate.wait_for(state="visible")
        assert validate.inner_text().strip() == "Validate"
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Nbgrader$")).click()
        page.click("li[data-command='nbgrader:open-assignment-list']")
        assignments = page.locator("#nbgrader-assignment-list")
        assignments.wait_for(state="visible")
        page.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first.wait_for(state="visible")
        screenshot(page, "nbgrader-assignment-list", whole_notebook=False)
        assert "exchange directory does not exist" not in assignments.inner_text()

        # Validate runs `nbgrader validate` on the server and shows its verdict: the blank notebook fails.
        page.locator(".lm-TabBar-tab", has_text=NOTEBOOK).click()
        validate.click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(state="visible", timeout=120_000)
        text = dialog.inner_text()
        screenshot(page, "nbgrader-validate", whole_notebook=False)
        assert "Validation Results" in text and "NotImplementedError" in text, text[:2000]
