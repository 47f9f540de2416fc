"""nbgrader's filesystem exchange, from the instructor's side: publish a release, collect submissions,
return feedback. Students use nbgrader's own Assignment List (fetch, submit, fetch feedback) on the same
folders, so the layout and the file names are nbgrader's:

    <root>/                                              1777 (nbgrader wants it writable by all)
    <root>/<course_id>/outbound/<assignment>/           released notebooks      0755 dirs, 0644 files
    <root>/<course_id>/inbound/<user>+<a>+<time>+<rnd>/  one folder per submit   inbound is 1733
    <root>/<course_id>/feedback/<md5(secret + notebook)>.html                     feedback is 0711

Students may write into inbound/ but not list it, nor remove or rename what others put there (the
sticky bit). Whatever a student puts there is hostile until checked: collect copies only regular files,
through file descriptors that never follow a symbolic link (a link in a submission cannot make it read
or write anywhere else, even if swapped in during the copy), and only from a folder owned by the user it
is named after (nbgrader's collect only warns about that, so one student can submit as another).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from autograder.course import Course, CourseError

MAX_FILE_BYTES = 50 * 2**20  # a submission's file larger than this is left out (and reported)
MAX_SUBMISSION_BYTES = 200 * 2**20


@dataclass
class Collected:
    """What `collect` did: the students whose latest submission was copied, those already up to date,
    and one line per problem (a submission ignored or a file left out, with the reason)."""

    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Exchange:
    root: Path
    course_id: str

    @property
    def course_dir(self) -> Path:
        return self.root / self.course_id

    @property
    def outbound(self) -> Path:
        return self.course_dir / "outbound"

    @property
    def inbound(self) -> Path:
        return self.course_dir / "inbound"

    @property
    def feedback(self) -> Path:
        return self.course_dir / "feedback"

    def prepare(self) -> None:
        """Create the exchange folders with nbgrader's permissions. nbgrader's Assignment List refuses an
        exchange root that is not writable by everyone: it is 1777, like /tmp, so what one user puts
        there no other can remove; the course's own folders are root's, and one that a user made is refused."""
        for folder, mode in ((self.root, 0o1777), (self.course_dir, 0o755), (self.outbound, 0o755),
                             (self.inbound, 0o1733), (self.feedback, 0o711)):  # fmt: skip
            if folder.is_symlink():
                raise CourseError(f"{folder} is a symbolic link: the exchange must be a real folder")
            folder.mkdir(mode=mode, exist_ok=True)
            if folder != self.root and folder.stat().st_uid != 0:
                raise CourseError(f"{folder} belongs to uid {folder.stat().st_uid}, not root: remove it and run again")
            folder.chmod(mode)

    def check(self) -> None:
        """CourseError unless the exchange has been prepared (`course serve` does it)."""
        if not self.inbound.is_dir() or not self.outbound.is_dir() or not self.feedback.is_dir():
            raise CourseError(
                f"{self.course_dir}: no exchange for course {self.course_id!r} here; `course serve` creates it "
                "(or pass the --exchange folder the server uses)"
            )


def publish(course: Course, exchange: Exchange, assignment: str) -> Path:
    """Copy release/<assignment>/ to the exchange's outbound/ (replacing an earlier publication at once:
    a student fetching meanwhile gets the old or the new release, never half of one)."""
    exchange.check()
    release = course.release_dir / assignment
    notebooks = sorted(release.glob("*.ipynb")) if release.is_dir() else []
    if not notebooks:
        raise CourseError(f"{release}: no released notebooks; run `course release {assignment}` first")
    target = exchange.outbound / assignment
    staging = exchange.outbound / f".{assignment}.publishing"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(release, staging, symlinks=False, ignore=shutil.ignore_patterns(".*", "__pycache__"))
    for path in [staging, *staging.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    old = exchange.outbound / f".{assignment}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _parse_entry(name: str, assignment: str) -> tuple[str, str] | None:
    """(user, timestamp) of an inbound folder name `<user>+<assignment>+<timestamp>[+<random>]`; None when
    it is for another assignment or not such a name."""
    parts = name.split("+")
    if len(parts) not in (3, 4) or parts[1] != assignment:
        return None
    return parts[0], parts[2]


def _timestamp(text: str) -> datetime | None:
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(text)
    except (ValueError, OverflowError, TypeError):
        return None


def collect(course: Course, exchange: Exchange, assignment: str, students: dict[str, int]) -> Collected:
    """Copy each student's latest submission of `assignment` from the exchange to submitted/<user>/<a>/,
    with its timestamp.txt (for late penalties) and submission_secret.txt (for returning feedback).
    students: {username: uid} of the roster; anything else in inbound/ is reported and left there."""
    exchange.check()
    done = Collected()
    latest: dict[str, tuple[datetime, str]] = {}
    for entry in sorted(os.scandir(exchange.inbound), key=lambda e: e.name):
        parsed = _parse_entry(entry.name, assignment)
        if parsed is None:
            continue
        user, text = parsed
        info = entry.stat(follow_symlinks=False)
        when = _timestamp(text)
        if user not in students:
            done.problems.append(f"{entry.name}: {user!r} is not on the roster; ignored")
        elif not stat.S_ISDIR(info.st_mode):
            done.problems.append(f"{entry.name}: not a folder (a link or a file); ignored")
        elif info.st_uid != students[user]:
            done.problems.append(f"{entry.name}: named for {user} but put there by uid {info.st_uid}; ignored")
        elif when is None:
            done.problems.append(f"{entry.name}: {text!r} is not a timestamp; ignored")
        elif user not in latest or when > latest[user][0]:
            latest[user] = (when, entry.name)
    for user, (when, name) in sorted(latest.items()):
        target = course.submitted_dir / user / assignment
        if _collected_timestamp(target) == when:
            done.unchanged.append(user)
            continue
        _copy_submission(exchange.inbound, name, target, when, done)
        done.copied.append(user)
    return done


def _collected_timestamp(folder: Path) -> datetime | None:
    try:
        return _timestamp((folder / "timestamp.txt").read_text().strip())
    except OSError:
        return None


def _copy_submission(inbound: Path, name: str, target: Path, when: datetime, done: Collected) -> None:
    staging = target.with_name(f".{target.name}.collecting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    inbound_fd = os.open(inbound, os.O_RDONLY | os.O_DIRECTORY)
    try:
        entry_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=inbound_fd)
    finally:
        os.close(inbound_fd)
    budget = [MAX_SUBMISSION_BYTES]
    try:
        _copy_folder(entry_fd, staging, name, budget, done)
    finally:
        os.close(entry_fd)
    if not (staging / "timestamp.txt").is_file():
        (staging / "timestamp.txt").write_text(str(when))
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _copy_folder(folder_fd: int, destination: Path, shown: str, budget: list[int], done: Collected) -> None:
    """Copy the regular files and folders under the open folder `folder_fd`, never following a link."""
    for name in sorted(os.listdir(folder_fd)):
        where = f"{shown}/{name}"
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
        except OSError as error:  # ELOOP: a symbolic link
            done.problems.append(f"{where}: left out ({'a symbolic link' if error.errno == 40 else error.strerror})")
            continue
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                (destination / name).mkdir()
                _copy_folder(fd, destination / name, where, budget, done)
            elif not stat.S_ISREG(info.st_mode):
                done.problems.append(f"{where}: left out (not a regular file)")
            elif info.st_size > min(MAX_FILE_BYTES, budget[0]):
                done.problems.append(f"{where}: left out ({info.st_size} bytes is over the size limit)")
            else:
                budget[0] -= info.st_size
                with os.fdopen(os.dup(fd), "rb") as source, open(destination / name, "xb") as copy:
                    shutil.copyfileobj(source, copy)
        finally:
            os.close(fd)


def feedback_checksum(secret: str, notebook_id: str) -> str:
    """nbgrader's name for a returned feedback file (nbgrader.utils.notebook_hash with a secret)."""
    return hashlib.md5(secret.encode() + notebook_id.encode()).hexdigest()


def return_feedback(course: Course, exchange: Exchange, assignment: str) -> tuple[list[str], list[str]]:
    """Put each student's feedback page (`course feedback` wrote it) where nbgrader's Fetch Feedback looks:
    feedback/<checksum>.html, one per notebook the student submitted. Returns (students, problems)."""
    exchange.check()
    returned, problems = [], []
    for page in sorted(course.root.glob(f"feedback/*/{assignment}/feedback.html")):
        student = page.parent.parent.name
        submitted = course.submitted_dir / student / assignment
        try:
            secret = (submitted / "submission_secret.txt").read_text()
        except OSError:
            problems.append(f"{student}: no submission_secret.txt in {submitted} (not collected from the exchange)")
            continue
        for notebook in sorted(submitted.glob("*.ipynb")):
            checksum = feedback_checksum(secret, notebook.stem)
            partial = exchange.feedback / f"{checksum}-tmp.html"
            shutil.copyfile(page, partial)
            partial.chmod(0o644)
            partial.replace(exchange.feedback / f"{checksum}.html")
        returned.append(student)
    return returned, problems
