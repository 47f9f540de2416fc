"""`course ci-template`: a GitHub Actions workflow that grades a student's repository with `course grade-one`.

The workflow goes into the student's repository (GitHub Classroom style: one repository per student and
assignment). On every push and pull request:

- job `grade` (GitHub's ubuntu-24.04 runner): checks out the student's repository into submission/ and
  the COURSE (source notebooks with their hidden tests) into course/, from a private repository named by
  the variable COURSE_REPOSITORY with the secret COURSE_TOKEN (never from the student's repository);
  installs it with the course's own scripts/setup.sh; lets bubblewrap create its namespaces (Ubuntu
  24.04 blocks unprivileged user namespaces through AppArmor; when that cannot be lifted, grading goes
  on with reduced isolation and says so as a warning); runs `course grade-one` and uploads results.json.
- job `grade-gpu` (a `[self-hosted, gpu]` runner), only for assignments with GPU-tagged tests: the same
  with `--part gpu`, while `grade` runs `--part cpu` (GPU tests stay pending there).

grade-one exits 0 whenever it graded, whatever the score, so a red run means the grader failed.

What this does not protect: the workflow file lives in the student's repository, so a student can edit
it, e.g. to print the hidden tests it fetched. Scores from it are feedback; grades come from
`course grade` on the instructor's side (or from a copy of this workflow kept in an instructor-owned
repository). The sandbox still keeps student code from reading course/ while it is graded.
"""

from __future__ import annotations

from pathlib import Path

from autograder.course import Course
from autograder.grading import parts
from autograder.grading.grade import AssignmentSource

PYTHON_VERSION = "3.11"

_HEADER = """\
# Grades {assignment} with the course's tamper-proof grader (`course grade-one`) on every push.
# Written by `course ci-template`. Set up once in the student's repository (or the organisation):
#   variable COURSE_REPOSITORY  owner/name of the PRIVATE course repository (it holds the hidden tests)
#   secret   COURSE_TOKEN       a read-only token for that repository
# The hidden tests are fetched from there, never from this repository. A student can edit this file:
# treat its score as feedback; grades come from `course grade` on the instructor's side.
name: grade {assignment}

on:
  push:
  pull_request:
  workflow_dispatch:

permissions:
  contents: read

env:
  ASSIGNMENT: {assignment}
  NOTEBOOK: {notebook}

jobs:
"""

_JOB = """\
  {job}:
    runs-on: {runs_on}
    timeout-minutes: {timeout}
    steps:
      - name: Check out the submission (this repository)
        uses: actions/checkout@v4
        with:
          path: submission
          persist-credentials: false
      - name: Check out the course and its hidden tests (private repository, never this one)
        uses: actions/checkout@v4
        with:
          repository: ${{{{ vars.COURSE_REPOSITORY }}}}
          token: ${{{{ secrets.COURSE_TOKEN }}}}
          path: course
          persist-credentials: false
{setup_python}      - name: Install the course
        id: install
        shell: bash
        run: |
          sudo -n apt-get update -qq && sudo -n apt-get install -y -qq bubblewrap || echo "no bubblewrap: see below"
          course/scripts/setup.sh
      - name: Let bubblewrap create user namespaces (Ubuntu 24.04 blocks them through AppArmor)
        id: userns
        shell: bash
        run: |
          if sudo -n sysctl -w kernel.apparmor_restrict_unprivileged_userns=0; then
            echo "sandbox: unprivileged user namespaces allowed, bubblewrap can isolate student code"
          else
            echo "::warning::could not lift AppArmor's user-namespace restriction (see the Grade step's isolation)"
          fi
      - name: Grade (exit 0 whatever the score; a failure here is the grader's)
        id: grade
        shell: bash
        run: |
          course/.venv/bin/course grade-one "submission/$NOTEBOOK" --assignment "$ASSIGNMENT" --part {part} \\
            --course course --results {results} | tee grade.log
          cat grade.log >> "${{GITHUB_STEP_SUMMARY:-/dev/null}}"
          if ! grep -q "(isolation: bubblewrap)" grade.log; then
            echo "::warning::graded with REDUCED isolation: student code could read files on this runner"
          fi
      - name: Keep results.json
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: {artifact}
          path: {results}
          if-no-files-found: warn
"""

_SETUP_PYTHON = f"""\
      - name: Python {PYTHON_VERSION}
        uses: actions/setup-python@v5
        with:
          python-version: "{PYTHON_VERSION}"
"""


def workflow(course: Course, assignment: str, gpu_job: bool | None = None) -> str:
    """The workflow's YAML text. gpu_job: add the `[self-hosted, gpu]` job (default: when the
    assignment has GPU-tagged tests)."""
    source = AssignmentSource.load(course, assignment)
    if gpu_job is None:
        gpu_job = parts.has_gpu_tests(source.notebooks)
    text = _HEADER.format(assignment=assignment, notebook=next(iter(source.notebooks)))
    text += _JOB.format(
        job="grade",
        runs_on="ubuntu-24.04",
        timeout=60,
        setup_python=_SETUP_PYTHON,
        part="cpu" if gpu_job else "all",
        results="results.json",
        artifact="results",
    )
    if gpu_job:
        text += "\n" + _JOB.format(
            job="grade-gpu",
            runs_on="[self-hosted, gpu]",
            timeout=120,
            setup_python="",  # a self-hosted runner brings its own Python
            part="gpu",
            results="results-gpu.json",
            artifact="results-gpu",
        )
    return text


def write_workflow(course: Course, assignment: str, out: Path, gpu_job: bool | None = None) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(workflow(course, assignment, gpu_job))
    return out
