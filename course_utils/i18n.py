"""The language course_utils speaks to a student: English, or the language the notebook was released in.

Two kinds of text are translated:
- course_utils' own messages ("dw: relative error 3.1e-02 > 1e-08, worst at [2, 3]"), through gettext:
  the catalogs are in course_utils/locale/<lang>/LC_MESSAGES/course_utils.mo (made with Babel, see
  scripts/messages.sh);
- what the assignment's tests say (hints, assert messages), which is the instructor's text: the translated
  release carries a table of them in the notebook's metadata, and the grader loads the same table from the
  translation file. A message is matched against the English templates, `{}` standing for a value:
  "expected {} classes, got {}" translates "expected 10 classes, got 9" into "应有 10 个类别，实际得到 9".

A translated notebook's first cell calls use_notebook("<its file>.ipynb"); without it everything is English.
Grading never depends on the language: only the words of a failure change.
"""

from __future__ import annotations

import gettext
import json
import os
import re
import string
import struct
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "course_utils"
SOURCE_LANGUAGE = "en"

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = SOURCE_LANGUAGE
_templates: list[tuple[re.Pattern, str]] = []


def _(message: str) -> str:
    """course_utils' own message, in the language in use (Babel extracts the calls)."""
    return _translation.gettext(message)


def language() -> str:
    return _language


def _pattern(template: str) -> re.Pattern:
    """A regular expression matching what `template` (an English message, `{}` for each value) prints."""
    parts = []
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append("(.*?)")
    return re.compile("".join(parts) + r"\Z", re.S)


def use(language_code: str = SOURCE_LANGUAGE, messages: list | dict | tuple = ()) -> None:
    """Speak `language_code` from now on; `messages`: (English template, translation) pairs of the tests."""
    global _translation, _language, _templates
    if language_code == SOURCE_LANGUAGE:
        _translation, _language, _templates = gettext.NullTranslations(), SOURCE_LANGUAGE, []
        return
    path = LOCALE_DIR / language_code / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as file:
            _translation = gettext.GNUTranslations(file)
    except (OSError, ValueError, IndexError, UnicodeDecodeError, struct.error) as error:
        raise RuntimeError(f"{path}: not a readable message catalog ({error})") from None
    _language = language_code
    pairs = messages.items() if isinstance(messages, dict) else messages
    # longer templates first: "x: {}" must not catch a message a more specific template describes
    ordered = sorted(pairs, key=lambda pair: -len(pair[0]))
    _templates = [(_pattern(en), translated) for en, translated in ordered if translated]


def use_notebook(notebook_file: str) -> str:
    """Speak the language the notebook was released in (its metadata course.language and course.messages).
    Returns the language; a notebook without them, or one that cannot be read, leaves English."""
    try:
        with open(os.path.abspath(notebook_file), encoding="utf-8") as file:
            course = json.load(file).get("metadata", {}).get("course", {})
        use(course.get("language", SOURCE_LANGUAGE), course.get("messages", []))
    except (OSError, ValueError, AttributeError, TypeError):
        use(SOURCE_LANGUAGE)
    return _language


def _translate_one(text: str) -> str:
    for pattern, translated in _templates:
        match = pattern.match(text)
        if match:
            try:
                return translated.format(*match.groups())
            except (IndexError, KeyError, ValueError):
                return text
    return text


def translate_message(text: str) -> str:
    """A test's message in the language in use: the whole text, else line by line ("hint: ..." lines too)."""
    if not _templates or not text:
        return text
    whole = _translate_one(text)
    if whole != text:
        return whole
    lines = []
    for line in text.split("\n"):
        label, sep, rest = line.partition("hint: ")
        if sep and not label:
            lines.append(_("hint: ") + _translate_one(rest))
        else:
            lines.append(_translate_one(line))
    return "\n".join(lines)
