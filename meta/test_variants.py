"""Hidden variants (grader.py --variant SEED) catch a submission that replays the public tests' expected values,
and accept every correct program: the reference and the correct variants of meta/catalogue/equivalents.py.

The replay cheater (meta/replay.py) is recorded on the public tests of the lessons whose tests draw their inputs
from a variant (CONVERTED); a lesson whose tests do not yet do so gives the same inputs under every variant, so its
cheater would pass there too.
"""

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from kata.course.manifest import lesson
from kata.course.repository import ROOT
from kata.grading import gradescope
from kata.grading import grade as grade_module
from kata.grading.run import reference_tests
from kata.grading import settings as grading_settings
from meta.catalogue import run_all
from meta.catalogue.equivalents import EQUIVALENTS
from meta.replay import lesson_files, replay_cheater

CONVERTED = ("02",)  # the lessons whose tests draw their inputs with seeded(), seed() and pick(): extend to 00-10
SEEDS = (1, 7)  # SEED 1 and one more


def pytest_counts(impl, lesson_id, variant=None, sandbox=False):
    """{"passed": n, "failed": n, ...} of one lesson's tests on impl, run by pytest (as the grader runs them when
    sandbox), on the public inputs or on a variant's."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--impl", str(impl),
               "-m", f"lesson{lesson_id}", *lesson_files([lesson_id])]
    command += ["--variant", str(variant)] if variant is not None else []
    command += ["--sandbox"] if sandbox else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    counts = {kind.rstrip("s"): int(n) for n, kind in re.findall(r"(\d+) (passed|failed|errors?)", summary)}
    assert counts, f"no summary from pytest (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return counts


def full_marks(counts, lesson_id):
    """Every test of the lesson's denominator (the reference's test ids) passed, and nothing else happened."""
    return counts == {"passed": len(reference_tests()[lesson_id])}


@pytest.fixture(scope="module")
def cheater(tmp_path_factory):
    return replay_cheater(tmp_path_factory.mktemp("replay") / "cheater", CONVERTED)


def test_the_converted_lessons_draw_their_inputs_from_the_variant():
    for lesson_id in CONVERTED:
        text = "".join(Path(path).read_text(encoding="utf-8") for path in lesson_files([lesson_id]))
        assert "seeded(" in text, f"lesson {lesson_id}'s tests draw nothing from a variant"


@pytest.mark.parametrize("lesson_id", CONVERTED)
def test_the_replay_cheater_gets_full_marks_on_the_public_tests_only(cheater, lesson_id):
    assert full_marks(pytest_counts(cheater, lesson_id, sandbox=True), lesson_id)
    for seed in SEEDS:
        counts = pytest_counts(cheater, lesson_id, seed, sandbox=True)
        assert counts.get("failed", 0) > 0 and not full_marks(counts, lesson_id), (seed, counts)


@pytest.mark.parametrize("lesson_id", CONVERTED)
def test_the_reference_gets_full_marks_on_the_public_tests_and_the_variants(lesson_id):
    for seed in (None, *SEEDS):
        assert full_marks(pytest_counts("solutions", lesson_id, seed), lesson_id), seed


@pytest.mark.parametrize("seed", (None, *SEEDS))
def test_every_correct_variant_gets_full_marks_on_its_lesson(seed):
    verdicts = run_all(EQUIVALENTS, workers=2, variant=seed)
    assert {eq.id: detail for eq in EQUIVALENTS for rejected, detail in [verdicts[eq.id]] if rejected} == {}
    for equivalent in EQUIVALENTS:  # every test of its lesson ran and passed
        assert verdicts[equivalent.id][1] == (f"all {len(reference_tests()[equivalent.lesson])} tests of lesson "
                                              f"{equivalent.lesson} passed")


def test_the_grader_reports_the_variant_beside_the_public_score(cheater, tmp_path):
    """End to end through grader.py, sandboxed: the table, the JSON and Gradescope's results.json."""
    out, results = tmp_path / "grade.json", tmp_path / "results.json"
    ids = ",".join(CONVERTED)
    done = subprocess.run([sys.executable, "grader.py", "--impl", str(cheater), "--lesson", ids, "--variant", "1",
                           "--json", str(out), "--gradescope", str(results)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()
    assert any(line.split()[:1] == ["lesson"] and line.rstrip().endswith("variant 1") for line in table), done.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    points = sum(lesson(i).points for i in CONVERTED)
    assert data["score"] == data["max_score"] == points  # the public keys: as without a variant
    variant = data["variant"]
    assert variant["seed"] == 1 and variant["max_score"] == points and variant["score"] < points
    assert [entry["id"] for entry in variant["lessons"]] == list(CONVERTED)
    for public, varied in zip(data["lessons"], variant["lessons"]):  # the same denominator: the public test ids
        assert [t["name"] for t in varied["tests"]] == [t["name"] for t in public["tests"]]
        assert varied["passed"] < varied["total"] == public["total"] == public["passed"]
    scoresheet = json.loads(results.read_text(encoding="utf-8"))
    hidden = [test for test in scoresheet["tests"] if test["visibility"] == "after_due_date"]
    shown = [test for test in scoresheet["tests"] if test["visibility"] == "visible"]
    assert len(hidden) == len(shown) == len(CONVERTED)
    assert all("variant 1" in test["name"] and test["max_score"] == lesson(test["number"][:2]).points
               for test in hidden)
    assert scoresheet["score"] == pytest.approx(data["score"] + variant["score"])
    assert [t["status"] for t in shown] == ["passed"] * len(CONVERTED)
    assert [t["status"] for t in hidden] == ["failed"] * len(CONVERTED)


def test_a_variant_needs_the_reference(monkeypatch, capsys):
    import grader

    monkeypatch.setattr(grade_module, "has_reference", lambda: False)
    assert grader.main(["--impl", "solutions", "--lesson", "02", "--variant", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[:-1] == ["Grading solutions..."]  # and one line that says why
    assert err[-1].startswith("grader.py: --variant 3: a variant's expected values are computed from the reference")


@pytest.mark.parametrize("bad", ["-1", "x", "4294967296", "1.5"])
def test_a_variant_is_a_seed(bad, capsys):
    import grader

    with pytest.raises(SystemExit) as stop:
        grader.main(["--variant", bad])
    assert stop.value.code == 2 and "expected a seed" in capsys.readouterr().err
    with pytest.raises(ValueError, match="expected a seed"):
        gradescope.run_autograder(variant=bad)


def test_the_seed_crosses_into_the_test_process_in_the_run_file(tmp_path):
    run = grading_settings.TestRun(replace(grading_settings.Settings(), variant=7), test_seconds=3.0)
    assert grading_settings.TestRun.read(run.write(tmp_path / "run.json")).settings.variant == 7
    public = grading_settings.TestRun(grading_settings.Settings()).write(tmp_path / "public.json")
    assert grading_settings.TestRun.read(public).settings.variant is None


def test_gradescope_takes_the_variant_from_package_and_environment():
    assert '"--variant=${KATA_VARIANT-7}"' in gradescope.run_autograder(variant=7)
    assert '"--variant=${KATA_VARIANT-}"' in gradescope.run_autograder()
    parsed = gradescope.checked_settings(type("Args", (), dict(
        lesson="", isolated="0", timeout="", visibility="visible", stdout_visibility="hidden", allow_unconfined="0",
        variant="12"))())
    assert parsed["variant"] == 12
    with pytest.raises(ValueError, match="KATA_VARIANT"):
        gradescope.checked_settings(type("Args", (), dict(
            lesson="", isolated="0", timeout="", visibility="visible", stdout_visibility="hidden",
            allow_unconfined="0", variant="seven"))())
