"""The words the grader itself says to students (grading messages, the feedback page, the release's
self-check cells), in the course's language. Catalogs: autograder/locale/<lang>/LC_MESSAGES/autograder.mo,
made with Babel (scripts/messages.sh). Instructors' own pages and the command line stay English.

The grading language is per process (a worker grades one course): `use(language)` at the start of a
submission; `_()` then translates.
"""

from __future__ import annotations

import functools
import gettext
import struct
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "autograder"
SOURCE_LANGUAGE = "en"

_current: gettext.NullTranslations = gettext.NullTranslations()


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of `language`; a missing or damaged one is one line naming the file."""
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    return read_catalog(LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo")


def read_catalog(path: Path) -> gettext.GNUTranslations:
    from autograder.course import CourseError

    try:
        with path.open("rb") as file:
            return gettext.GNUTranslations(file)
    except (OSError, ValueError, IndexError, UnicodeDecodeError, struct.error) as error:
        raise CourseError(f"{path}: not a readable message catalog ({error}); scripts/messages.sh builds it") from None


def use(language: str) -> None:
    global _current
    _current = translations(language)


def _(message: str) -> str:
    return _current.gettext(message)


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where it is used."""
    return message


def gettext_in(language: str, message: str) -> str:
    """`message` in `language`, whatever the process's language is (release writes several)."""
    return translations(language).gettext(message)
