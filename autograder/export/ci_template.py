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

import yaml

from autograder.course import Course
from autograder.grading import parts
from autograder.grading.grade import AssignmentSource
from autograder.grading.parts import Part

PYTHON_VERSION = "3.11"

HEADER = """\
# Grades {assignment} with the course's tamper-proof grader (`course grade-one`) on every push.
# Written by `course ci-template`. Set up once in the student's repository (or the organisation):
#   variable COURSE_REPOSITORY  owner/name of the PRIVATE course repository (it holds the hidden tests)
#   secret   COURSE_TOKEN       a read-only token for that repository
# The hidden tests are fetched from there, never from this repository. A student can edit this file:
# treat its score as feedback; grades come from `course grade` on the instructor's side.
"""

INSTALL = """\
sudo -n apt-get update -qq && sudo -n apt-get install -y -qq bubblewrap || echo "no bubblewrap: see below"
course/scripts/setup.sh
"""

ALLOW_USER_NAMESPACES = """\
if sudo -n sysctl -w kernel.apparmor_restrict_unprivileged_userns=0; then
  echo "sandbox: unprivileged user namespaces allowed, bubblewrap can isolate student code"
else
  echo "::warning::could not lift AppArmor's user-namespace restriction (see the Grade step's isolation)"
fi
"""

GRADE = """\
course/.venv/bin/course grade-one "submission/$NOTEBOOK" --assignment "$ASSIGNMENT" --part {part} \\
  --course course --results {results} | tee grade.log
cat grade.log >> "${{GITHUB_STEP_SUMMARY:-/dev/null}}"
if ! grep -q "(isolation: bubblewrap)" grade.log; then
  echo "::warning::graded with REDUCED isolation: student code could read files on this runner"
fi
"""


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the run: scripts), so the file reads like a hand-written one."""


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _string)


def _checkout(name: str, **more: str) -> dict:
    return {"name": name, "uses": "actions/checkout@v4", "with": {**more, "persist-credentials": False}}


def _job(runs_on: str | list[str], timeout: int, part: Part, results: str, artifact: str, python: bool) -> dict:
    steps = [
        _checkout("Check out the submission (this repository)", path="submission"),
        _checkout("Check out the course and its hidden tests (private repository, never this one)",
                  repository="${{ vars.COURSE_REPOSITORY }}", token="${{ secrets.COURSE_TOKEN }}", path="course"),
    ]  # fmt: skip
    if python:  # a self-hosted runner brings its own Python
        steps.append({"name": f"Python {PYTHON_VERSION}", "uses": "actions/setup-python@v5",
                      "with": {"python-version": PYTHON_VERSION}})  # fmt: skip
    steps += [
        {"name": "Install the course", "id": "install", "shell": "bash", "run": INSTALL},
        {"name": "Let bubblewrap create user namespaces (Ubuntu 24.04 blocks them through AppArmor)",
         "id": "userns", "shell": "bash", "run": ALLOW_USER_NAMESPACES},
        {"name": "Grade (exit 0 whatever the score; a failure here is the grader's)", "id": "grade",
         "shell": "bash", "run": GRADE.format(part=part.value, results=results)},
        {"name": "Keep results.json", "if": "always()", "uses": "actions/upload-artifact@v4",
         "with": {"name": artifact, "path": results, "if-no-files-found": "warn"}},
    ]  # fmt: skip
    return {"runs-on": runs_on, "timeout-minutes": timeout, "steps": steps}


def workflow(course: Course, assignment: str, gpu_job: bool | None = None) -> str:
    """The workflow's YAML text. gpu_job: add the `[self-hosted, gpu]` job (default: when the
    assignment has GPU-tagged tests)."""
    source = AssignmentSource.load(course, assignment)
    if gpu_job is None:
        gpu_job = parts.has_gpu_tests(source.notebooks)
    jobs = {"grade": _job("ubuntu-24.04", 60, Part.CPU if gpu_job else Part.ALL, "results.json", "results", True)}
    if gpu_job:
        jobs["grade-gpu"] = _job(["self-hosted", "gpu"], 120, Part.GPU, "results-gpu.json", "results-gpu", False)
    document = {
        "name": f"grade {assignment}",
        "on": {"push": None, "pull_request": None, "workflow_dispatch": None},
        "permissions": {"contents": "read"},
        "env": {"ASSIGNMENT": assignment, "NOTEBOOK": next(iter(source.notebooks))},
        "jobs": jobs,
    }
    text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120, default_flow_style=False)
    return HEADER.format(assignment=assignment) + text


def write_workflow(course: Course, assignment: str, out: Path, gpu_job: bool | None = None) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(workflow(course, assignment, gpu_job))
    return out
