"""The course in Chinese: translation files, gettext catalogs, the zh release, and grading in both languages.

English is the source of truth; a translation changes words only. Stale or incomplete translations fail
here with the cell named; a Chinese release has Chinese prose in every cell that has prose; the same
submissions score the same in both languages.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from autograder.authoring import translation
from autograder.authoring.demo import build_demo_course
from autograder.authoring.release import release
from autograder.course import REPO_ROOT, Course, CourseError
from autograder.grading.grade import AssignmentSource, grade_submission
from autograder.records.feedback import render_feedback
from course_utils import i18n as course_utils_i18n
from course_utils.checks import assert_close

ASSIGNMENTS = Course.load(REPO_ROOT).assignments()
COURSE = str(Path(sys.executable).with_name("course"))
CATALOGS = {"course_utils": REPO_ROOT / "course_utils", "autograder": REPO_ROOT / "autograder"}


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
    return nb


def _translation(nb, texts, messages=()):
    entries = {cell.id: translation.CellTranslation(translation.english_hash(cell.source), texts[cell.id])
               for cell in nb.cells if cell.id in texts}
    return translation.Translation(Path("t.zh.yaml"), "zh", "t.ipynb", entries, list(messages))


# --- the format: stale cells, what a translation may change, bad files ---------------------------------------


def test_an_english_edit_makes_the_translation_stale_and_names_the_cell():
    nb = _notebook(nbformat.v4.new_markdown_cell("The gradient of $f$ is zero."))
    found = _translation(nb, {"cell-0": "$f$ 的梯度为零。"})
    assert translation.translation_problems(nb, found) == []
    nb.cells[0].source = "The gradient of $f$ is one."
    problems = translation.translation_problems(nb, found)
    assert [(p.cell_id, p.kind) for p in problems] == [("cell-0", "stale")]
    translated, left = translation.translated_notebook(nb, found)
    assert translated.cells[0].source == "The gradient of $f$ is one."  # stale: the English is shown
    assert [p.cell_id for p in left] == ["cell-0"]


@pytest.mark.parametrize("english, translated, problem", [
    ("Use $\\frac{a}{b}$ here.", "这里用 $\\frac{a}{c}$。", "inline math"),
    ("$$x^2$$ and more words", "$$x^3$$ 以及更多", "math"),
    ("Call `relu_forward(x)` first.", "先调用 relu。", "inline code `relu_forward(x)`"),
    ("Answer:\n### BEGIN SOLUTION\nyes\n### END SOLUTION", "回答：\n是", "markers"),
])
def test_a_markdown_translation_keeps_math_code_and_markers(english, translated, problem):
    cell = nbformat.v4.new_markdown_cell(english)
    assert problem in translation.change_problem(cell, translated)


def test_a_wrapped_span_may_be_joined_in_the_translation():
    cell = nbformat.v4.new_markdown_cell("Clip with `clip_grad_norm_(...,\nmax_norm)` and $a +\nb$.")
    assert translation.change_problem(cell, "用 `clip_grad_norm_(..., max_norm)` 裁剪，$a + b$。") is None


def test_a_code_translation_may_change_only_comments_and_docstrings():
    cell = nbformat.v4.new_code_cell('def f(x):\n    """Double x."""\n    # twice\n    return 2 * x')
    assert translation.change_problem(cell, 'def f(x):\n    """把 x 加倍。"""\n    # 两倍\n    return 2 * x') is None
    assert "code differs" in translation.change_problem(cell, 'def f(x):\n    """把 x 加倍。"""\n    return 3 * x')
    assert "does not parse" in translation.change_problem(cell, "def f(x):\n    return 2 *")


def test_a_test_cell_is_translated_in_its_public_part_only():
    hidden = '### BEGIN HIDDEN TESTS\n# secret shapes\nassert_close("dx", dx2, 0)\n### END HIDDEN TESTS'
    test = nbformat.v4.new_code_cell('# compare\nassert_close("dx", dx, 0, hint=f"dx has {n} rows")\n' + hidden)
    test.metadata = {"nbgrader": {"grade": True, "grade_id": "t", "points": 1, "solution": False, "locked": True}}
    assert translation.needs_translation(test)
    assert "secret" not in translation.english_text(test)  # hidden tests never land in a translation file
    public = '# 比较\nassert_close("dx", dx, 0, hint=f"dx has {n} rows")\n'
    assert translation.change_problem(test, public) is None
    assert "code differs" in translation.change_problem(test, public.replace("dx, 0", "dx, 1"))
    assert translation.message_templates(test.source) == ["dx has {} rows"]


@pytest.fixture
def one_notebook_course(fixture_course):
    """The fixture course's first assignment with a complete (hand-made) translation of its notebook."""
    assignment = fixture_course.assignments()[0]
    path = fixture_course.source_notebooks(assignment)[0]
    nb = nbformat.read(path, as_version=4)
    target = translation.translation_path(path.parent, path.name, "zh")
    translation.update_translation_file(nb, path.name, target, "zh")
    return fixture_course, assignment, path, target


def test_a_translation_file_naming_a_cell_that_no_longer_exists_is_one_line(one_notebook_course):
    course, assignment, path, target = one_notebook_course
    target.write_text(target.read_text(encoding="utf-8").replace("cells:\n", "cells:\n  gone-cell:\n    en: "
                      "0123456789ab\n    text: x\n", 1), encoding="utf-8")
    with pytest.raises(CourseError, match=rf"^{re.escape(str(target))}: cell id 'gone-cell' is not in"):
        release(course, assignment, execute_solutions=False, language="zh")
    assert not course.release_dir_for("zh").exists()  # nothing half written


@pytest.mark.parametrize("damage, message", [
    ("language: zh\ncells: [oops\n", "not a readable translation file"),
    ("language: zh\nnotebook: x.ipynb\ncells:\n  a:\n    text: 1\n", "cells/a"),
])
def test_a_malformed_translation_file_is_one_line(one_notebook_course, damage, message):
    course, assignment, path, target = one_notebook_course
    target.write_text(damage, encoding="utf-8")
    with pytest.raises(CourseError, match=re.escape(str(target)) + ".*" + re.escape(message)):
        release(course, assignment, execute_solutions=False, language="zh")


def test_an_unknown_language_is_refused_before_anything_is_written(fixture_course):
    result = subprocess.run([COURSE, "release", "--all", "--lang", "fr", "--no-execute",
                             "--course", str(fixture_course.root)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown language 'fr': the course can be released in en (English), zh (中文)"]
    assert not any(fixture_course.root.glob("release-*"))


def test_a_damaged_catalog_is_one_line_and_no_half_release(fixture_course, tmp_path, monkeypatch):
    from autograder import i18n

    damaged = tmp_path / "locale" / "zh" / "LC_MESSAGES" / "autograder.mo"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"\x00" * 40)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locale")
    i18n.translations.cache_clear()
    try:
        assignment = fixture_course.assignments()[0]
        path = fixture_course.source_notebooks(assignment)[0]
        nb = nbformat.read(path, as_version=4)
        translation.update_translation_file(nb, path.name, translation.translation_path(path.parent, path.name, "zh"),
                                            "zh")
        with pytest.raises(CourseError, match=rf"^{re.escape(str(damaged))}: not a readable message catalog"):
            release(fixture_course, assignment, execute_solutions=False, language="zh")
        assert not fixture_course.release_dir_for("zh").exists()
    finally:
        i18n.translations.cache_clear()


# --- the gettext catalogs (scripts/messages.sh) ---------------------------------------------------------------


@pytest.mark.parametrize("domain", CATALOGS)
def test_the_catalog_is_complete_compiled_and_up_to_date(domain):
    package = CATALOGS[domain]
    method_map = [("**.py", "python"), ("**/templates/**.j2", "jinja2")]
    options = {"**/templates/**.j2": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "N_": None, "gettext_in": (2,)}
    in_code = {message for _file, _line, message, _comments, _context in
               extract_from_dir(package, method_map, options, keywords=keywords)}
    po_path = package / "locale" / "zh" / "LC_MESSAGES" / f"{domain}.po"
    with po_path.open("rb") as file:
        catalog = read_po(file)
    in_catalog = {message.id for message in catalog if message.id}
    assert in_code == in_catalog, f"run scripts/messages.sh: {sorted(in_code ^ in_catalog)[:5]}"
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert not untranslated, f"{po_path}: translate {untranslated[:5]}"
    with po_path.with_suffix(".mo").open("rb") as file:
        compiled = {m.id: m.string for m in read_mo(file) if m.id}
    assert compiled == {m.id: m.string for m in catalog if m.id}, f"{po_path}: compile it (scripts/messages.sh)"


def test_course_utils_fails_in_chinese_with_the_tests_own_hint_translated():
    course_utils_i18n.use("zh", [("dx has the shape of {}", "dx 的形状与 {} 相同")])
    try:
        with pytest.raises(AssertionError) as failure:
            assert_close("dx", [1.0, 2.0], [1.0, 3.0], tol=1e-8, hint="dx has the shape of x")
        assert str(failure.value) == "dx：相对误差 2.0e-01 > 1e-08，最大误差位于 [1]\n提示：dx 的形状与 x 相同"
    finally:
        course_utils_i18n.use("en")
    with pytest.raises(AssertionError, match=r"^dx: relative error 2.0e-01 > 1e-08, worst at \[1\]\nhint: dx has"):
        assert_close("dx", [1.0, 2.0], [1.0, 3.0], tol=1e-8, hint="dx has the shape of x")


def test_the_feedback_page_speaks_the_course_language():
    from autograder.grading.results import CellResult, SubmissionResult

    result = SubmissionResult("alice", "a1_backprop")
    result.cells.append(CellResult("a1_backprop.ipynb", "test_relu", 3, 0.0, "AssertionError: dx：相对误差"))
    page = render_feedback(result, published=True, language="zh")
    assert '<html lang="zh">' in page and "自动评分得分" in page and "未通过" in page
    assert "Autograded score" in render_feedback(result, published=True)


def test_the_late_penalty_is_described_in_the_course_language():
    from datetime import datetime, timedelta

    from autograder.grading.results import CellResult, SubmissionResult
    from autograder.records.late import Lateness, LatePolicy

    result = SubmissionResult("bob", "a1_backprop", cells=[CellResult("a1_backprop.ipynb", "test_relu", 10, 10.0, "")])
    rule = LatePolicy("per_day", rate=0.1, floor=0.5, grace=timedelta(minutes=15))
    due = datetime(2026, 12, 1, 12, 0)
    late = Lateness("bob", due + timedelta(hours=30), due, multiplier=rule.multiplier(timedelta(hours=30)))
    page = render_feedback(result, False, late, rule, language="zh")
    assert "每迟交一天" in page and "宽限 15 分钟" in page and "之后 30.0 小时提交" in page and "off per" not in page
    english = render_feedback(result, False, late, rule)
    assert "10% off per started day late, down to 50% at most, 15 minutes&#39; grace" in english
    assert "submitted 30.0 h after the due date (2026-12-01 12:00 UTC)" in english
    missing = Lateness("cy", None, due, problem="no timestamp.txt: late penalty not applied")
    assert "没有 timestamp.txt" in render_feedback(result, False, missing, rule, language="zh")
    assert {LatePolicy(kind).describe(str) for kind in ("zero", "none", "per_hour")} == {
        "late work scores 0", "no late penalty", "0% off per started hour late, down to 0% at most"}


# --- every assignment: translated, released in Chinese, graded alike ------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_translation_is_complete_and_current(repo_course, assignment):
    report = translation.assignment_translations(repo_course, assignment, "zh")
    assert report.ok, "\n".join(report.lines() + [f"`course translate {assignment} --lang zh` marks what to do"])


@pytest.fixture(scope="module")
def zh_course(tmp_path_factory):
    """A copy of the course (source and the English solutions) released in Chinese, without executing."""
    root = tmp_path_factory.mktemp("zh") / "course"
    root.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root)
    for folder in ("source", "solutions"):
        shutil.copytree(REPO_ROOT / folder, root / folder)
    course = Course.load(root)
    for assignment in course.assignments():
        release(course, assignment, execute_solutions=False, language="zh")
    return course


def _cells(course, assignment, language):
    folder = course.release_dir_for(language) / assignment
    return [cell for path in sorted(folder.glob("*.ipynb")) for cell in nbformat.read(path, as_version=4).cells]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_cell_with_prose_is_chinese_in_the_zh_release(zh_course, assignment):
    not_chinese = []
    for cell in _cells(zh_course, assignment, "zh"):
        if cell.cell_type == "markdown" and translation.prose_letters(cell.source):
            cjk, latin = translation.cjk_characters(cell.source), translation.prose_letters(cell.source)
            if cjk < max(5, latin // 5):
                not_chinese.append(f"{cell.id}: {cjk} Chinese characters, {latin} Latin letters")
        elif cell.cell_type == "code":
            for line in cell.source.split("\n"):
                comment = line.split("#", 1)[1] if "#" in line else ""
                words = [t for t in comment.split() if re.fullmatch(r"[A-Za-z]{3,}[,.:;]?", t)]  # prose, not code
                if len(words) >= 4 and not translation.cjk_characters(comment) and "BEGIN" not in comment:
                    not_chinese.append(f"{cell.id}: comment {comment.strip()[:60]!r}")
    assert not not_chinese, "\n".join(not_chinese)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_zh_release_has_the_same_tests_and_no_translation_file(zh_course, assignment):
    english = [(c.cell_type, c.metadata.get("nbgrader", {}).get("grade_id"), c.source)
               for c in _cells(Course.load(REPO_ROOT), assignment, "en")]
    chinese = [(c.cell_type, c.metadata.get("nbgrader", {}).get("grade_id"), c.source)
               for c in _cells(zh_course, assignment, "zh") if c.id != "course-language"]
    assert [(kind, gid) for kind, gid, _ in english] == [(kind, gid) for kind, gid, _ in chinese]
    chinese_code = {gid: text for kind, gid, text in chinese if kind == "code" and gid}
    for kind, gid, text in english:  # the same code in every graded cell (comments and docstrings aside)
        if kind == "code" and gid:
            assert translation.change_problem(nbformat.v4.new_code_cell(text), chinese_code[gid]) is None, gid
    assert not list((zh_course.release_dir_for("zh") / assignment).rglob("*.yaml"))


def test_grading_in_chinese_gives_the_same_scores_with_chinese_messages(tmp_path, monkeypatch):
    """The demo batch of a1 (solution, blank, seeded bugs, garbage) graded in English, then in Chinese."""
    course = Course.load(REPO_ROOT)
    demo = build_demo_course(course, "a1_backprop", tmp_path / "demo", mutant_numbers=set(range(6)))
    shutil.copytree(course.source_dir / "a1_backprop" / "translations",
                    demo.source_dir / "a1_backprop" / "translations", dirs_exist_ok=True)
    scores, messages = {}, {}
    for language in ("en", "zh"):
        monkeypatch.setenv("COURSE_LANGUAGE", language)
        source = AssignmentSource.load(demo, "a1_backprop")
        assert source.language == language
        for student_dir in sorted(demo.submitted_dir.iterdir()):
            result = grade_submission(source, student_dir / "a1_backprop", student_dir.name)
            scores[language, student_dir.name] = [(c.grade_id, c.score) for c in result.cells]
            messages[language, student_dir.name] = " ".join(c.message for c in result.cells)
    monkeypatch.delenv("COURSE_LANGUAGE")
    course_utils_i18n.use("en")
    students = sorted({student for _, student in scores})
    assert len(students) >= 9
    for student in students:
        assert scores["en", student] == scores["zh", student], student
    failing = [s for s in students if messages["zh", s].strip()]
    assert failing and all(translation.cjk_characters(messages["zh", s]) for s in failing)
    assert not any(translation.cjk_characters(messages["en", s]) for s in students)
    for student in [s for s in students if s.startswith("garbage")]:  # intake's reasons, not only their prefix
        assert "is not a notebook" in messages["en", student] or "nbformat 3" in messages["en", student], student
        assert "not a notebook" not in messages["zh", student] and "open and save" not in messages["zh", student]
        assert "不是 notebook" in messages["zh", student] or "在 Jupyter 中打开并保存" in messages["zh", student]


def test_course_check_on_the_zh_solution_speaks_chinese_and_passes(tmp_path):
    course = Course.load(REPO_ROOT)
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root)
    for folder in ("source", "solutions"):
        shutil.copytree(REPO_ROOT / folder / "a1_backprop", root / folder / "a1_backprop")
    copy = Course.load(root)
    report = release(copy, "a1_backprop", language="zh")
    assert report.solutions_up_to_date == [] and not report.untranslated  # translated from the posted English
    solution = copy.solutions_dir_for("zh") / "a1_backprop" / "a1_backprop.ipynb"
    result = subprocess.run([COURSE, "check", str(solution)], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "公开测试通过" in result.stdout and "项检查" in result.stdout
    assert re.search(r"^通过  test", result.stdout, re.M) and not re.search(r"^PASS ", result.stdout, re.M)
    assert course.language == "en"

