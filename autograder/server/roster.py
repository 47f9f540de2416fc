"""The course roster: a CSV with one student per row (`username`, optionally `name`), checked whole before
anything is created from it."""

from __future__ import annotations

import csv
import pwd
import re
from dataclasses import dataclass
from pathlib import Path

from autograder.course import CourseError

# Portable Linux user names (useradd's default check is looser); the first character a letter.
USERNAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
FIRST_REGULAR_UID = 1000  # below: system accounts (root, daemon, www-data...), never course users


@dataclass(frozen=True)
class Member:
    username: str
    name: str


def read_roster(path: Path, instructor: str) -> list[Member]:
    """The students of the roster at `path`; CourseError naming the file and line of the first problem
    (a missing username column, an invalid, duplicate or system user name, the instructor listed)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as error:
        raise CourseError(f"{path}: cannot read the roster ({error.strerror})") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise CourseError(f"{path}: not a CSV file ({error})") from None
    if not rows or "username" not in rows[0]:
        raise CourseError(f"{path}: the roster needs a header row with a 'username' column and one row per student")
    members: dict[str, int] = {}
    found = []
    for line, row in enumerate(rows, start=2):
        username = (row.get("username") or "").strip()
        where = f"{path}, line {line}"
        if not USERNAME.match(username):
            raise CourseError(
                f"{where}: {username!r} is not a valid user name (lower-case letters, digits, '_' or '-', "
                "starting with a letter, at most 32 characters)"
            )
        if username in members:
            raise CourseError(f"{where}: {username!r} is listed twice (first on line {members[username]})")
        if username == instructor:
            raise CourseError(f"{where}: {username!r} is the instructor's account, not a student's")
        if _is_system_account(username):
            raise CourseError(f"{where}: {username!r} is a system account of this machine")
        members[username] = line
        found.append(Member(username, (row.get("name") or "").strip()))
    return found


def _is_system_account(username: str) -> bool:
    try:
        return pwd.getpwnam(username).pw_uid < FIRST_REGULAR_UID
    except KeyError:
        return False
