"""Where a course lives on disk, and the grader's settings.

A course directory is an ordinary nbgrader course: nbgrader_config.py, source/, release/, submitted/...
This course's own repository is one; tests build small ones in temporary directories.

The grader's settings that are not about one assignment are read here and only here. A setting comes
from the environment (for a worker, a CI job or a test), else from the course's nbgrader_config.py
(`c.Grader.<name>`) where it has one, else its default:

| setting                         | environment               | nbgrader_config.py  | default                  |
| ------------------------------- | ------------------------- | ------------------- | ------------------------ |
| Redis URL of the Celery backend | COURSE_BROKER_URL         | c.Grader.broker_url | redis://127.0.0.1:6379/0 |
| Celery visibility timeout (s)   | COURSE_VISIBILITY_TIMEOUT | -                   | 7200                     |
| run without bubblewrap          | COURSE_NO_BUBBLEWRAP=1    | -                   | off                      |
| pretend to have one CUDA GPU    | COURSE_FAKE_CUDA=1        | -                   | off (tests only)         |

A command-line option (`--broker`) beats all three. Time limits are per assignment: c.TimeLimits, read
by grading/time_limits.py.
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
    "a8_training",
    "a9_nlp",
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
    def language(self) -> str:
        """The language students get (c.Course.language; the environment's COURSE_LANGUAGE, which
        `--lang` sets, wins): notebooks, self-check, grading messages, feedback. English by default."""
        return os.environ.get(LANGUAGE_ENV) or self.config.Course.get("language", "en")

    def release_dir_for(self, language: str) -> Path:
        """release/ holds the course's language; another language is released beside it (release-zh/)."""
        return self.release_dir if language == self.language else self.root / f"{self.release_dir.name}-{language}"

    def solutions_dir_for(self, language: str) -> Path:
        return self.solutions_dir if language == self.language else self.root / f"{self.solutions_dir.name}-{language}"

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


def hand_to_owner(course: Course) -> None:
    """When root runs a verb on a course that belongs to someone else (the instructor's, on the course
    server), what the verb wrote goes to that owner too, so their formgrader can open and write the
    gradebook. Nothing to do for a course root owns, or when not run as root."""
    owner = course.root.stat()
    if os.geteuid() != 0 or owner.st_uid == 0:
        return
    written = [course.submitted_dir, course.autograded_dir, course.reports_dir, course.root / "feedback",
               course.root / "gradebook.db", course.root / "grading_jobs.db"]  # fmt: skip
    for top in written:
        if top.exists() and not top.is_symlink():
            for path in [top, *(top.rglob("*") if top.is_dir() else [])]:
                if not path.is_symlink():
                    os.chown(path, owner.st_uid, owner.st_gid)


# --- settings that are not per assignment -----------------------------------------------------------

BROKER_URL_ENV = "COURSE_BROKER_URL"
LANGUAGE_ENV = "COURSE_LANGUAGE"  # what `course grade --lang` sets for the workers it starts
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
VISIBILITY_TIMEOUT_ENV = "COURSE_VISIBILITY_TIMEOUT"
NO_BUBBLEWRAP_ENV = "COURSE_NO_BUBBLEWRAP"
FAKE_CUDA_ENV = "COURSE_FAKE_CUDA"


def broker_url(given: str | None = None, course: Course | None = None) -> str:
    """The Redis URL: the one given (an option), COURSE_BROKER_URL, c.Grader.broker_url, the default."""
    from_config = course.config.Grader.get("broker_url") if course is not None else None
    return given or os.environ.get(BROKER_URL_ENV) or from_config or DEFAULT_BROKER_URL


def visibility_timeout_s() -> int:
    """How long Redis keeps a task a worker took before giving it to another worker: longer than any
    grading, or a slow one would be graded twice."""
    return int(os.environ.get(VISIBILITY_TIMEOUT_ENV, 2 * 3600))


def bubblewrap_turned_off() -> bool:
    return bool(os.environ.get(NO_BUBBLEWRAP_ENV))


def fake_cuda() -> bool:
    """Test-only: a worker started with COURSE_FAKE_CUDA=1 believes it has one CUDA device (a gpu-queue
    worker on a machine without a GPU). Never set it on a real runner."""
    return os.environ.get(FAKE_CUDA_ENV) == "1"
