"""Notebook translations: source/<a>/translations/<notebook stem>.<lang>.yaml.

English is the source of truth. A translation file holds, for each cell that talks to the student, the
translated cell keyed by its cell id, with `en`: a hash of the English text it translates. Edit the English
and the entry no longer matches: the cell is *stale*, the release shows the English text of that cell and
`tests/test_translations.py` names it. `course translate <a> --lang zh` adds an entry (`todo: true`, the
English text to translate under `english`) for each cell that is new or stale.

    language: zh
    notebook: a1_backprop.ipynb
    cells:
      md_intro:
        en: 3f2a9c0d1e2b          # sha256 of the English cell, first 12 hex digits
        text: |-
          # 作业一：手写反向传播
          ...
    messages:                     # what test cells say when they fail (hints, assert messages)
      - en: "dx has the shape of x: which product gives that?"
        zh: "dx 与 x 形状相同：哪个乘积能得到这个形状？"
      - en: "expected {} classes, got {}"        # {} stands for each {...} of an f-string
        zh: "应有 {} 个类别，实际得到 {}"

What a translation may change is checked, cell by cell (`translation_problems`): in a markdown cell the
math ($...$, $$...$$), fenced code and nbgrader's markers stay identical, and every `inline code` of the
English is still there; in a code cell only comments and docstrings change (the code parses to the same
tree). Test code is never taken from a translation when grading: the judge runs the English source's tests.
"""

from __future__ import annotations

import ast
import hashlib
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import nbformat
import yaml
from nbformat import NotebookNode

from autograder.course import CourseError
from autograder.notebook import cells

SOURCE_LANGUAGE = "en"
# The languages a course can be released in, with the name a student reads in the notebook.
LANGUAGES = {"en": "English", "zh": "中文"}
TRANSLATIONS_FOLDER = "translations"  # inside source/<a>/; never copied into a release

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_FENCED = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)([^$]+?)(?<![\\$])\$")  # may wrap onto the next line
_INLINE_CODE = re.compile(r"`[^`]+`")  # may wrap onto the next line too
_MARKERS = (cells.BEGIN_SOLUTION, cells.END_SOLUTION, cells.BEGIN_HIDDEN, cells.END_HIDDEN)

SCHEMA = {
    "type": "object",
    "required": ["language", "notebook", "cells"],
    "additionalProperties": False,
    "properties": {
        "language": {"type": "string"},
        "notebook": {"type": "string"},
        "cells": {
            "type": ["object", "null"],
            "additionalProperties": {
                "type": "object",
                "required": ["en", "text"],
                "additionalProperties": False,
                "properties": {
                    "en": {"type": "string", "pattern": "^[0-9a-f]{12}$"},
                    "text": {"type": "string"},
                    "todo": {"type": "boolean"},
                    "english": {"type": "string"},
                },
            },
        },
        "messages": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "required": ["en", "zh"],
                "additionalProperties": False,
                "properties": {"en": {"type": "string", "minLength": 1}, "zh": {"type": "string"}},
            },
        },
    },
}


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        known = ", ".join(f"{code} ({name})" for code, name in LANGUAGES.items())
        raise CourseError(f"unknown language {language!r}: the course can be released in {known}")
    return language


def english_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


@dataclass
class CellTranslation:
    en: str  # english_hash of the English cell this translates
    text: str
    todo: bool = False  # added by `course translate`, not translated yet
    english: str | None = None  # the English text, for the translator (entries marked todo)


@dataclass
class Translation:
    path: Path
    language: str
    notebook: str
    cells: dict[str, CellTranslation] = field(default_factory=dict)
    messages: list[tuple[str, str]] = field(default_factory=list)  # (English template, translation)

    def as_yaml(self) -> str:
        entries = {}
        for cell_id, entry in self.cells.items():
            data = {"en": entry.en}
            if entry.todo:
                data["todo"] = True
            if entry.english is not None:
                data["english"] = entry.english
            data["text"] = entry.text
            entries[cell_id] = data
        document = {"language": self.language, "notebook": self.notebook, "cells": entries,
                    "messages": [{"en": en, self.language: zh} for en, zh in self.messages]}
        header = (f"# {LANGUAGES.get(self.language, self.language)} ({self.language}) translation of {self.notebook}."
                  " English is the source of truth:\n# see autograder/authoring/translation.py for the format, "
                  "README \"Languages\" for the workflow.\n")
        return header + yaml.dump(document, Dumper=_LiteralDumper, allow_unicode=True, sort_keys=False, width=120)


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as YAML block literals (`|-`), so a translator edits the cell as it reads."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def translation_path(source_folder: Path, notebook: str, language: str) -> Path:
    return source_folder / TRANSLATIONS_FOLDER / f"{Path(notebook).stem}.{language}.yaml"


def load_translation(path: Path, notebook: NotebookNode, notebook_name: str, language: str) -> Translation:
    """Read and check a translation file against the English notebook; a bad file is one line naming it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CourseError(f"{path}: not a readable translation file: {first}") from None
    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "the file"
        raise CourseError(f"{path}: {where}: {error.message}") from None
    if data["language"] != language:
        raise CourseError(f"{path}: says language {data['language']!r}, its name says {language!r}")
    if data["notebook"] != notebook_name:
        raise CourseError(f"{path}: translates {data['notebook']!r}, not {notebook_name!r}")
    ids = {cell.get("id") for cell in notebook.cells}
    unknown = [cell_id for cell_id in (data["cells"] or {}) if cell_id not in ids]
    if unknown:
        raise CourseError(f"{path}: cell id {unknown[0]!r} is not in {notebook_name} "
                          f"({len(unknown)} unknown id(s)); remove the entry or give the cell its id back")
    entries = {cell_id: CellTranslation(**entry) for cell_id, entry in (data["cells"] or {}).items()}
    messages = [(item["en"], item["zh"]) for item in (data.get("messages") or [])]
    return Translation(path, language, notebook_name, entries, messages)


# --- what needs translating, and what a translation may change ---------------------------------------------


def _without_math_and_code(text: str) -> str:
    for pattern in (_FENCED, _DISPLAY_MATH, _INLINE_MATH, _INLINE_CODE):
        text = pattern.sub(" ", text)
    text = re.sub(r"<[^>]+>", " ", text)  # HTML tags
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    return "\n".join(line for line in text.split("\n") if line.strip() not in _MARKERS)


def prose_letters(markdown: str) -> int:
    """Latin letters in words of two or more letters, outside math, code, tags and link targets."""
    return sum(len(word) for word in re.findall(r"[A-Za-z]{2,}", _without_math_and_code(markdown)))


def cjk_characters(text: str) -> int:
    return len(CJK.findall(text))


def _docstrings(tree: ast.AST) -> list[ast.Constant]:
    found = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found += [first.value] if isinstance(first.value.value, str) else []
    return found


def _docstrings_blanked(tree: ast.AST) -> ast.AST:
    for docstring in _docstrings(tree):
        docstring.value = ""
    return tree


def _python(source: str) -> str:
    """Cell source as plain Python (IPython's %magics and !commands turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _comments_and_docstrings(source: str) -> int:
    """How many comments and docstrings the code cell has (0: nothing to translate)."""
    count = sum(1 for line in source.split("\n") if "#" in line and line.strip() not in _MARKERS)
    try:
        return count + len(_docstrings(ast.parse(_python(source))))
    except SyntaxError:
        return count


def english_text(cell: NotebookNode) -> str:
    """What a translation of the cell translates: the cell; for a test cell, its public part only (hidden
    tests never reach a student, so they are neither translated nor copied into a translation file)."""
    if cell.cell_type == "code" and cells.role(cell) == "test":
        return cells.public_test_text(cell.source)
    return cell.source


def needs_translation(cell: NotebookNode) -> bool:
    """Markdown with prose, or a code cell with comments or docstrings (a student may read both). What test
    cells say when they fail is translated as `messages`; their comments as cells (public part)."""
    if cell.cell_type == "markdown":
        return prose_letters(cell.source) > 0
    return cell.cell_type == "code" and _comments_and_docstrings(english_text(cell)) > 0


def _marker_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip() in _MARKERS]


def _spans(pattern: re.Pattern, text: str, wrap: bool = True) -> list[str]:
    """The spans the pattern finds; wrap: a line break inside one counts as a space (markdown rewraps)."""
    found = [match.group(0) for match in pattern.finditer(text)]
    return [re.sub(r"\s+", " ", span) for span in found] if wrap else found


def change_problem(english: NotebookNode, translated: str) -> str | None:
    """What the translation changed that it must not (None: only prose, comments and docstrings)."""
    original = english_text(english)
    if _marker_lines(original) != _marker_lines(translated):
        return "nbgrader's markers (### BEGIN/END ...) differ from the English cell"
    if english.cell_type == "code":
        try:
            same = ast.dump(_docstrings_blanked(ast.parse(_python(original)))) == ast.dump(
                _docstrings_blanked(ast.parse(_python(translated))))
        except SyntaxError as error:
            return f"the translated code does not parse (line {error.lineno}: {error.msg})"
        return None if same else "the code differs from the English cell (only comments and docstrings may change)"
    for name, pattern in (("math", _DISPLAY_MATH), ("fenced code", _FENCED)):
        wrap = name == "math"
        if Counter(_spans(pattern, english.source, wrap)) != Counter(_spans(pattern, translated, wrap)):
            return f"the {name} differs from the English cell"
    without_display = [_DISPLAY_MATH.sub(" ", _FENCED.sub(" ", text)) for text in (english.source, translated)]
    if Counter(_spans(_INLINE_MATH, without_display[0])) != Counter(_spans(_INLINE_MATH, without_display[1])):
        return "the inline math ($...$) differs from the English cell"
    without_math = [_INLINE_MATH.sub(" ", text) for text in without_display]
    missing = set(_spans(_INLINE_CODE, without_math[0])) - set(_spans(_INLINE_CODE, without_math[1]))
    if missing:
        return f"inline code {sorted(missing)[0]} of the English cell is missing"
    return None


@dataclass
class CellProblem:
    cell_id: str
    kind: str  # "missing", "todo", "stale", "changed"
    detail: str = ""

    def line(self) -> str:
        return f"{self.cell_id}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


def translation_problems(notebook: NotebookNode, translation: Translation | None) -> list[CellProblem]:
    """Every cell that needs a translation and has no usable one, in notebook order."""
    found = []
    for cell in notebook.cells:
        if not needs_translation(cell):
            continue
        entry = translation.cells.get(cell.id) if translation else None
        if entry is None:
            found.append(CellProblem(cell.id, "missing"))
        elif entry.todo:
            found.append(CellProblem(cell.id, "todo"))
        elif entry.en != english_hash(english_text(cell)):
            found.append(CellProblem(cell.id, "stale", "the English cell changed since it was translated"))
        else:
            problem = change_problem(cell, entry.text)
            if problem:
                found.append(CellProblem(cell.id, "changed", problem))
    return found


def translated_notebook(notebook: NotebookNode, translation: Translation) -> tuple[NotebookNode, list[CellProblem]]:
    """A copy of the English notebook with every usable translation applied; the cells left in English."""
    problems = translation_problems(notebook, translation)
    unusable = {problem.cell_id for problem in problems}
    translated = nbformat.from_dict(notebook)
    for cell in translated.cells:
        entry = translation.cells.get(cell.get("id"))
        if entry is not None and cell.id not in unusable and needs_translation(cell):
            cell.source = entry.text
    return translated, problems


# --- the messages test cells show when they fail ------------------------------------------------------------


def _template(node: ast.AST) -> str | None:
    """The text of a string literal; an f-string with `{}` for each field (literal braces doubled)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}")
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value).replace("{", "{{").replace("}", "}}"))
            else:
                parts.append("{}")
        return "".join(parts)
    return None


def _strings_in(node: ast.AST) -> list[str]:
    """Templates of the string literals in an expression (a hint may be `a if c else b`, `x or "..."`)."""
    found = []
    for child in ast.walk(node):
        template = _template(child)
        if template is not None and re.search(r"[A-Za-z]{2,}", template):
            found.append(template)
        if isinstance(child, ast.JoinedStr):
            break  # its parts are not messages of their own
    return found


def _calls(call: ast.Call, name: str) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id == name


def message_templates(source: str) -> list[str]:
    """What a test or helper cell may say when a check fails: hint= arguments, assert messages, the
    arguments of a raised AssertionError, and strings assigned to a name with `hint` or `message` in it."""
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "hint":
            found += _strings_in(node.value)
        elif isinstance(node, ast.Assert) and node.msg is not None:
            found += _strings_in(node.msg)
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _calls(node.exc, "AssertionError"):
            for arg in node.exc.args:
                found += _strings_in(arg)
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and ("hint" in t.id or "message" in t.id) for t in node.targets):
            found += _strings_in(node.value)
    return list(dict.fromkeys(found))


def notebook_message_templates(notebook: NotebookNode, public_only: bool = False) -> list[str]:
    """Message templates of the notebook's test cells and of the locked cells that define checks for them.
    public_only: leave out what only hidden tests say (it must not reach a student's notebook)."""
    found: list[str] = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and cells.role(cell) == "solution":  # what its rule says it must be
            found += _rule_templates(cell.metadata.get("course", {}))
        if cell.cell_type != "code" or cells.role(cell) == "solution":
            continue
        source = cells.public_test_text(cell.source) if public_only and cells.role(cell) == "test" else cell.source
        found += message_templates(source)
    return list(dict.fromkeys(found))


def _rule_templates(course: dict) -> list[str]:
    """The words of a cell's rule that its message quotes ("relu_backward must be <written with numpy>")."""
    if not isinstance(course, dict):
        return []
    found = []
    if course.get("forbid"):
        found.append(course.get("must_be") or "written without " + ", ".join(course["forbid"]))
    found += [entry["why"] for entry in course.get("require", []) if isinstance(entry, dict) and "why" in entry]
    return [text.replace("{", "{{").replace("}", "}}") for text in found]


def template_fields(template: str) -> int:
    return sum(1 for _, name, _, _ in string.Formatter().parse(template) if name is not None)


def message_problems(notebook: NotebookNode, translation: Translation | None) -> list[str]:
    """Test messages without a translation, translations of messages no test says, field counts that differ."""
    wanted = notebook_message_templates(notebook)
    given = dict(translation.messages) if translation else {}
    found = [f"message not translated: {template!r}" for template in wanted if not given.get(template)]
    found += [f"message no test says (remove it): {template!r}" for template in given if template not in wanted]
    for en, zh in given.items():
        try:
            fields = template_fields(zh)
        except ValueError as error:
            found.append(f"message {en!r}: its translation is not a valid template ({error})")
            continue
        if zh and fields != template_fields(en):
            found.append(f"message {en!r}: {template_fields(en)} field(s) {{}} in English, {fields} in the translation")
    return found


# --- `course translate`: entries for what is new or stale ---------------------------------------------------


def update_translation_file(notebook: NotebookNode, notebook_name: str, path: Path, language: str) -> list[CellProblem]:
    """Add a todo entry for each cell that is missing or stale, and each untranslated message; keep the rest.
    Returns what was marked todo."""
    if path.exists():
        translation = load_translation(path, notebook, notebook_name, language)
    else:
        translation = Translation(path, language, notebook_name)
    problems = translation_problems(notebook, translation)
    by_id = {cell.id: cell for cell in notebook.cells}
    marked = []
    ordered: dict[str, CellTranslation] = {}
    todo_ids = {problem.cell_id for problem in problems if problem.kind in ("missing", "stale", "todo")}
    for cell in notebook.cells:  # entries in notebook order
        entry = translation.cells.get(cell.id)
        if cell.id in todo_ids:
            cell_source = english_text(by_id[cell.id])
            stale = entry is not None and not entry.todo
            # a stale entry keeps its old translation to edit, beside the new English; a new one starts as English
            entry = CellTranslation(english_hash(cell_source), entry.text if stale else cell_source, todo=True,
                                    english=cell_source if stale else None)
            marked.append(next(p for p in problems if p.cell_id == cell.id))
        if entry is not None:
            ordered[cell.id] = entry
    translation.cells = ordered
    known = dict(translation.messages)
    translation.messages = [(template, known.get(template, "")) for template in notebook_message_templates(notebook)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(translation.as_yaml(), encoding="utf-8")
    return marked


# --- the glossary ---------------------------------------------------------------------------------------------

GLOSSARY_FOLDER = "i18n"


def glossary_path(course_root: Path, language: str) -> Path:
    return course_root / GLOSSARY_FOLDER / f"glossary.{language}.yaml"


def load_glossary(path: Path) -> dict[str, str]:
    """{English term: translated term}; {} when the course has no glossary for the language."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        terms = data["terms"]
        if not isinstance(terms, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in terms.items()):
            raise TypeError("terms must map English terms to translated terms")
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise CourseError(f"{path}: not a readable glossary: {error}") from None
    return terms


def _mentions(english: str, term: str) -> bool:
    words = r"[\s-]+".join(re.escape(word) for word in re.split(r"[\s-]+", term))
    return re.search(rf"(?<![\w-]){words}(s|es|d)?(?![\w-])", _without_math_and_code(english), re.I) is not None


def glossary_problems(notebook: NotebookNode, translation: Translation, glossary: dict[str, str]) -> list[str]:
    """Translated cells whose English mentions a glossary term while the translation lacks its term."""
    found = []
    for cell in notebook.cells:
        entry = translation.cells.get(cell.get("id"))
        if entry is None or entry.todo or not needs_translation(cell):
            continue
        english = cell.source if cell.cell_type == "markdown" else "\n".join(
            line.split("#", 1)[1] for line in english_text(cell).split("\n")
            if "#" in line and line.strip() not in _MARKERS)
        for term, translated in glossary.items():
            if translated not in entry.text and _mentions(english, term):
                found.append(f"{cell.id}: the English says {term!r}; the glossary's term is {translated}")
    return found


# --- one assignment's state, for `course translate` and the tests ---------------------------------------------


@dataclass
class AssignmentTranslations:
    assignment: str
    language: str
    files: list[Path] = field(default_factory=list)
    cell_problems: list[CellProblem] = field(default_factory=list)
    other_problems: list[str] = field(default_factory=list)  # messages, glossary
    cells_translated: int = 0

    @property
    def ok(self) -> bool:
        return not self.cell_problems and not self.other_problems

    def lines(self) -> list[str]:
        kinds = Counter(problem.kind for problem in self.cell_problems)
        state = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "complete"
        head = f"{self.assignment} ({self.language}): {self.cells_translated} cell(s) translated; {state}"
        return [head] + [f"  {p.line()}" for p in self.cell_problems] + [f"  {p}" for p in self.other_problems]


def assignment_translations(course, assignment: str, language: str, update: bool = False) -> AssignmentTranslations:
    """Check (and with update, add todo entries to) the translation files of one assignment."""
    from autograder.notebook.source import read_source_notebook

    check_language(language)
    report = AssignmentTranslations(assignment, language)
    glossary = load_glossary(glossary_path(course.root, language))
    for source_path in course.source_notebooks(assignment):
        notebook = read_source_notebook(source_path, check_metadata=False)
        path = translation_path(source_path.parent, source_path.name, language)
        report.files.append(path)
        if update:
            update_translation_file(notebook, source_path.name, path, language)
        translation = load_translation(path, notebook, source_path.name, language) if path.exists() else None
        problems = translation_problems(notebook, translation)
        report.cell_problems += problems
        wanted = sum(needs_translation(cell) for cell in notebook.cells)
        report.cells_translated += wanted - len(problems)
        report.other_problems += message_problems(notebook, translation)
        if translation is not None:
            report.other_problems += glossary_problems(notebook, translation, glossary)
    return report
