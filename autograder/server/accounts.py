"""Linux accounts for the course's users: created with a random password and a private home (0700:
Debian's useradd leaves homes readable by everyone), and removed again when a run fails half-way."""

from __future__ import annotations

import csv
import os
import pwd
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from autograder.course import CourseError

COMMENT = "dl-course user"  # the GECOS field of the accounts this module creates


@dataclass(frozen=True)
class Account:
    username: str
    uid: int
    gid: int
    home: Path


def account(username: str) -> Account | None:
    try:
        entry = pwd.getpwnam(username)
    except KeyError:
        return None
    return Account(username, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def _run(argv: list[str], stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise CourseError(f"{' '.join(argv[:2])} failed: {(done.stderr or done.stdout).strip()[:300]}")


def create_accounts(usernames: list[str], passwords_file: Path) -> list[str]:
    """Create the accounts that do not exist yet, each with a random password appended to `passwords_file`
    (mode 0600, for the instructor to hand out); make every listed home private. Returns the names
    created. If one fails, those created by this call are removed again and the error is raised."""
    if os.geteuid() != 0:
        raise CourseError("creating the students' Linux accounts needs root: run this command with sudo")
    created: list[str] = []
    try:
        for username in usernames:
            if account(username) is None:
                password = secrets.token_urlsafe(9)
                _run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", COMMENT, username])
                created.append(username)
                _run(["chpasswd"], stdin=f"{username}:{password}\n")
                _append_password(passwords_file, username, password)
            home = account(username).home
            if home.is_dir():
                home.chmod(0o700)
    except BaseException:
        remove_accounts(created)
        raise
    return created


def set_password(username: str, password: str) -> None:
    _run(["chpasswd"], stdin=f"{username}:{password}\n")


def remove_accounts(usernames: list[str]) -> None:
    """Remove accounts this module created (their homes too); others are left alone."""
    for username in usernames:
        found = account(username)
        if found is not None and pwd.getpwnam(username).pw_gecos.startswith(COMMENT):
            subprocess.run(["userdel", "--remove", username], capture_output=True)


def _append_password(path: Path, username: str, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", newline="") as f:
        if f.tell() == 0:
            f.write("username,password\n")
        csv.writer(f).writerow([username, password])
