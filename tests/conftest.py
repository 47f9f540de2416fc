import shutil
from pathlib import Path

import pytest

from autograder.course import REPO_ROOT, Course

FIXTURE_COURSE = Path(__file__).parent / "fixtures" / "course"


def copy_course(source: Path, root: Path) -> Course:
    shutil.copytree(source, root, symlinks=True)
    return Course.load(root)


@pytest.fixture
def fixture_course(tmp_path) -> Course:
    """A private copy of the small hand-written nbgrader course in tests/fixtures/course."""
    return copy_course(FIXTURE_COURSE, tmp_path / "course")


@pytest.fixture(scope="session")
def released_fixture_course(tmp_path_factory) -> Path:
    """The fixture course with every assignment released and its solutions executed, once per session
    (and xdist worker): executing solutions starts a kernel. Tests take copies (released)."""
    from autograder.authoring.release import release

    course = copy_course(FIXTURE_COURSE, tmp_path_factory.mktemp("released") / "course")
    for assignment in course.assignments():
        release(course, assignment)
    return course.root


@pytest.fixture
def released(released_fixture_course, tmp_path) -> Course:
    """A private copy of the fixture course, released (release/ and executed solutions/ up to date)."""
    return copy_course(released_fixture_course, tmp_path / "course")


@pytest.fixture(scope="session")
def repo_course() -> Course:
    return Course.load(REPO_ROOT)


# Browser tests (tests/test_browser.py, tests/test_server_browser.py): Debian's Chromium, never a download.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as e:
            pytest.fail(f"cannot launch headless Chromium at {CHROMIUM} (scripts/setup.sh installs it): {e}")
        try:
            yield chromium
        finally:
            chromium.close()
