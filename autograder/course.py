"""Where a course lives on disk and what its nbgrader_config.py says.

A course directory is an ordinary nbgrader course: nbgrader_config.py, source/, release/, submitted/...
This course's own repository is one; tests build small ones in temporary directories.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

ASSIGNMENTS = (
    "a1_backprop",
    "a2_bn_dropout",
    "a3_cnn",
    "a4_rnn",
    "a5_transformer",
    "a6_gan",
    "a7_dqn",
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def put_python_scripts_on_path() -> None:
    """nbgrader's Gradebook runs the `alembic` script by name: make sure this Python's scripts are found."""
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


class CourseError(Exception):
    """A problem with the course itself (not a student's submission): printed as one line, exit code 2."""


@dataclass(frozen=True)
class Course:
    root: Path
    config: Config

    @classmethod
    def load(cls, root: Path | str = ".") -> Course:
        root = Path(root).resolve()
        config_file = root / "nbgrader_config.py"
        if not config_file.is_file():
            raise CourseError(f"{config_file}: not found; is {root} a course directory?")
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        return cls(root=root, config=config)

    def _dir(self, key: str, default: str) -> Path:
        return self.root / self.config.CourseDirectory.get(key, default)

    @property
    def source_dir(self) -> Path:
        return self._dir("source_directory", "source")

    @property
    def release_dir(self) -> Path:
        return self._dir("release_directory", "release")

    @property
    def solutions_dir(self) -> Path:
        return self.root / "solutions"

    @property
    def submitted_dir(self) -> Path:
        return self._dir("submitted_directory", "submitted")

    @property
    def autograded_dir(self) -> Path:
        return self._dir("autograded_directory", "autograded")

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def db_url(self) -> str:
        url = self.config.CourseDirectory.get("db_url", "sqlite:///gradebook.db")
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            url = prefix + str(self.root / url[len(prefix) :])
        return url

    @property
    def course_id(self) -> str:
        return self.config.CourseDirectory.get("course_id", "course")

    def assignments(self) -> list[str]:
        """Assignments present in source/, in course order first, then any others alphabetically."""
        present = {p.name for p in self.source_dir.iterdir() if p.is_dir()} if self.source_dir.is_dir() else set()
        ordered = [a for a in ASSIGNMENTS if a in present]
        return ordered + sorted(present - set(ordered))

    def source_notebooks(self, assignment: str) -> list[Path]:
        folder = self.source_dir / assignment
        if not folder.is_dir():
            known = ", ".join(self.assignments()) or "none"
            raise CourseError(f"unknown assignment {assignment!r}: no folder {folder} (known: {known})")
        notebooks = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
        if not notebooks:
            raise CourseError(f"{folder}: no notebooks in this assignment")
        return notebooks
