"""Tests of the stubs: exercises/ is generated from solutions/, and no stub earns a point."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from kata.authoring.stubs import stale_files
from kata.course.exercises import generate
from kata.course.manifest import lessons
from kata.course.repository import ROOT

pytestmark = pytest.mark.meta


def committed(path):
    """The text of a file of the repository as its last commit has it, or None (no git, or not committed)."""
    done = subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{path}"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def test_exercises_are_generated_from_solutions():
    """exercises/ as the repository holds it is what solutions/ generates. A file a student has changed since is
    theirs: for it, the committed version must be the generated one."""
    expected = generate()
    for name in stale_files():
        if name not in expected:
            continue  # a module of the student's own
        shipped = committed(f"exercises/{name}")
        if shipped is None:
            pytest.skip("exercises/ holds changes and there is no git history to compare with")
        assert shipped == expected[name], (f"exercises/{name} is out of date with solutions/{name}: run `make "
                                           f"exercises` and commit it")


def test_every_test_fails_on_the_stubs_with_a_message_pointing_to_the_stub(tmp_path, stubs):
    report = tmp_path / "stubs.xml"
    markers = " or ".join(item.marker for item in lessons())
    proc = subprocess.run(
        # (--tb=native: the messages checked below are the same; pytest's long tracebacks took 4 s more to format)
        [sys.executable, "-m", "pytest", "-q", "--tb=native", "--impl", str(stubs), "-m", markers, f"--junitxml={report}",
         str(ROOT / "tests")], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert proc.returncode == 1, f"pytest on the stubs should end with failures (exit 1), got {proc.returncode}:\n{proc.stdout[-3000:]}"
    cases = list(ET.parse(report).getroot().iter("testcase"))
    passed, unclear, per_lesson = [], [], {item.id: 0 for item in lessons()}
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        problems = case.findall("failure") + case.findall("error")
        if not problems:
            passed.append(name)
            continue
        text = " ".join((p.get("message") or "") + (p.text or "") for p in problems)
        if "is not implemented yet" not in text:
            unclear.append(f"{name}: {text[:200]}")
        lesson_id = case.get("classname").split("test_lesson")[1][:2]
        per_lesson[lesson_id] += 1
    assert not passed, f"{len(passed)} tests pass on the pristine stubs (a stub must earn nothing): {passed[:10]}"
    assert not unclear, f"{len(unclear)} tests fail on the stubs without pointing to a stub:\n" + "\n".join(unclear[:10])
    assert all(per_lesson.values()), f"lessons without a failing test on the stubs: {per_lesson}"


def test_readme_lesson_table_matches_the_manifest():
    from kata.authoring.docs import render

    text = (ROOT / "README.md").read_text()
    assert render(text) == text, "README.md's lesson table is out of date with manifest.toml: run `make exercises`"
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[2] for line in text.splitlines()
            if line.startswith("| 0") or line.startswith("| 1")}
    for item in lessons():
        for exercise in item.exercises:
            found = f"`{exercise.symbol}`" in rows[item.id]
            assert found != exercise.worked, (
                f"README.md, lesson {item.id}: {exercise.symbol} {'is' if exercise.worked else 'is not'} listed under "
                f"'you write', but it is {'a worked example, given complete' if exercise.worked else 'an exercise'}")
