"""The HTML pages grading leaves for people (feedback, the course report), from Jinja2 templates.

Templates live in records/templates/ and share page.html.j2 (one self-contained page: inline CSS, no
scripts, no external URLs). Autoescape is on: whatever came from a submission (messages, outputs,
student names) is escaped by the template engine, never by hand.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def render(template: str, **values) -> str:
    return _ENVIRONMENT.get_template(template).render(**values)
