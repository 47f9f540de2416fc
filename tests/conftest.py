import shutil
from pathlib import Path

import pytest

from autograder.course import REPO_ROOT, Course

FIXTURE_COURSE = Path(__file__).parent / "fixtures" / "course"


@pytest.fixture
def fixture_course(tmp_path) -> Course:
    """A private copy of the small hand-written nbgrader course in tests/fixtures/course."""
    root = tmp_path / "course"
    shutil.copytree(FIXTURE_COURSE, root)
    return Course.load(root)


@pytest.fixture(scope="session")
def repo_course() -> Course:
    return Course.load(REPO_ROOT)
