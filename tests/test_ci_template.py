"""`course ci-template`: the GitHub Actions workflow parses, has the promised structure, and its shell steps,
run here in a temporary workspace, grade a submission into results.json."""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from autograder.course import REPO_ROOT
from autograder.export.ci_template import workflow

A1 = "a1_backprop"
SYSCTL = "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"


def parse(text: str) -> dict:
    data = yaml.safe_load(text)
    assert True not in data, "the key `on` must be quoted, or YAML 1.1 readers see the boolean true"
    return data


def checkouts(job: dict) -> dict[str, dict]:
    """path -> the `with:` of each actions/checkout step."""
    return {s["with"]["path"]: s["with"] for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")}


def test_gpu_assignment_gets_a_cpu_job_and_a_self_hosted_gpu_job(repo_course):
    data = parse(workflow(repo_course, "a3_cnn"))
    assert set(data["on"]) >= {"push", "pull_request"}
    assert data["env"] == {"ASSIGNMENT": "a3_cnn", "NOTEBOOK": "a3_cnn.ipynb"}
    jobs = data["jobs"]
    assert jobs["grade"]["runs-on"] == "ubuntu-24.04"
    assert jobs["grade-gpu"]["runs-on"] == ["self-hosted", "gpu"]
    for name, part in (("grade", "cpu"), ("grade-gpu", "gpu")):
        job = jobs[name]
        steps = {s.get("id"): s for s in job["steps"]}
        assert SYSCTL in steps["userns"]["run"] and "::warning::" in steps["userns"]["run"]
        assert f"--part {part}" in steps["grade"]["run"] and "--course course" in steps["grade"]["run"]
        # the hidden tests: only from the private course repository, into course/, never from this repository
        paths = checkouts(job)
        assert set(paths) == {"submission", "course"}
        assert paths["course"]["repository"] == "${{ vars.COURSE_REPOSITORY }}"
        assert paths["course"]["token"] == "${{ secrets.COURSE_TOKEN }}"
        assert "repository" not in paths["submission"] and "token" not in paths["submission"]
        assert "github.repository" not in json.dumps(job)
        upload = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert upload and upload[0]["if"] == "always()" and upload[0]["with"]["path"].startswith("results")


def test_assignment_without_gpu_tests_has_one_job_unless_asked(repo_course):
    assert set(parse(workflow(repo_course, A1))["jobs"]) == {"grade"}
    assert "--part all" in workflow(repo_course, A1)
    assert set(parse(workflow(repo_course, A1, gpu_job=True))["jobs"]) == {"grade", "grade-gpu"}


def _minimal_course(root):
    """The course/ checkout: a copy of this course's a1 (config, source with hidden tests, release)."""
    root.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root)
    for folder in ("source", "release"):
        shutil.copytree(REPO_ROOT / folder / A1, root / folder / A1)


def test_the_cpu_jobs_shell_steps_grade_the_submission(tmp_path, repo_course):
    """Runs each `run:` step of job `grade` with bash, as the runner would (`shell: bash` is bash -eo
    pipefail), in a workspace laid out as the checkout steps leave it. Substituted, because they need
    the network or GitHub: the checkouts (the workspace is built here: submission/ holds the solution,
    course/ a copy of this course), actions/setup-python (this machine's Python), the install step
    (course/.venv is this project's virtualenv instead of scripts/setup.sh's pip install) and sudo (a
    stand-in that refuses, so the AppArmor step takes its reduced-isolation branch and must not fail)."""
    job = parse(workflow(repo_course, A1))["jobs"]["grade"]
    env_block = parse(workflow(repo_course, A1))["env"]
    workspace = tmp_path / "workspace"
    (workspace / "submission").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "solutions" / A1 / f"{A1}.ipynb", workspace / "submission")
    _minimal_course(workspace / "course")
    (workspace / "course" / ".venv").symlink_to(REPO_ROOT / ".venv")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "sudo").write_text("#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n")
    (fake_bin / "sudo").chmod(0o755)
    summary = tmp_path / "summary.md"
    env = {**os.environ, **env_block, "GITHUB_STEP_SUMMARY": str(summary)}
    env["PATH"] = f"{fake_bin}{os.pathsep}{env['PATH']}"

    ran = []
    for step in job["steps"]:
        if "run" not in step:
            assert step["uses"].split("@")[0] in {
                "actions/checkout", "actions/setup-python", "actions/upload-artifact",
            }  # fmt: skip
            continue
        assert not re.search(r"\$\{\{", step["run"]), "a run step needs a GitHub expression"
        if step.get("id") == "install":
            assert "course/scripts/setup.sh" in step["run"]
            continue  # network: replaced by the course/.venv symlink above
        done = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", step["run"]], cwd=workspace, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"{step['name']}:\n{done.stdout}\n{done.stderr}"
        ran.append((step["id"], done.stdout))
    assert [name for name, _ in ran] == ["userns", "grade"]
    assert "::warning::could not lift AppArmor" in ran[0][1]
    results = json.loads((workspace / "results.json").read_text())
    assert results["score"] == 90 and len(results["tests"]) == 16
    assert "90/90 autograded points" in summary.read_text()
    isolation = "bubblewrap" if "(isolation: bubblewrap)" in ran[1][1] else "reduced"
    assert ("REDUCED isolation" in ran[1][1]) == (isolation == "reduced")


@pytest.mark.parametrize("assignment", ["a1_backprop", "a6_gan"])
def test_cli_writes_the_workflow(tmp_path, assignment):
    out = tmp_path / ".github" / "workflows" / "grade.yml"
    done = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "course"), "ci-template", "--assignment", assignment, "--out", str(out),
         "--course", str(REPO_ROOT)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert parse(out.read_text())["env"]["ASSIGNMENT"] == assignment
