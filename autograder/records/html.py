"""The HTML pages grading leaves for people (feedback, the course report), from Jinja2 templates.

Templates live in records/templates/ and share page.html.j2 (one self-contained page: inline CSS, no
scripts, no external URLs). Autoescape is on: whatever came from a submission (messages, outputs,
student names) is escaped by the template engine, never by hand.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

from autograder import i18n


@functools.cache
def _environment(language: str) -> jinja2.Environment:
    """Templates whose {{ _("...") }} speak `language` (jinja2's i18n extension, our gettext catalogs)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_translations(i18n.translations(language), newstyle=True)
    return environment


def render(template: str, language: str = i18n.SOURCE_LANGUAGE, **values) -> str:
    return _environment(language).get_template(template).render(language=language, **values)
