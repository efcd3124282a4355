"""Hidden variants (grader.py --variant SEED) catch a submission that replays the public tests' expected values,
and accept every correct program: the reference and the correct variants of meta/catalogue/equivalents.py.

The replay cheater (meta/replay.py) is recorded on the public tests of every lesson (CONVERTED), all of which draw
their inputs from a variant (a lesson whose tests did not would give the same inputs under every variant, and the
cheater would pass there too: test_the_converted_lessons_draw_their_inputs_from_the_variant).
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from kata.course.manifest import lesson, lessons
from kata.course.repository import ROOT
from kata.grading import grade as grade_module
from kata.grading import gradescope
from kata.grading import settings as grading_settings
from kata.grading.batch import Graded, row
from kata.grading.results import GradeResult, LessonResult, TestOutcome, VariantResult
from kata.grading.run import PYTEST, reference_tests
from kata.grading.run import _read_log as read_log
from meta.catalogue import run_all
from meta.catalogue.equivalents import EQUIVALENTS
from meta.helpers import marked_processes, wait_for
from meta.replay import lesson_files, replay_cheater

CONVERTED = tuple(item.id for item in lessons())  # every lesson's tests draw their inputs with seeded(), seed(), pick()
SEEDS = (1, 7)  # SEED 1 and one more
GRADED = ("02",)  # graded end to end through grader.py (the other lessons' runs are the same code)


def outcomes(impl, lesson_ids, variant=None, sandbox=False, tmp=None):
    """{test id: status} of the lessons' tests on impl, run in one test process as the grader runs one (the
    grader's reporter, told by a TestRun: sandboxed or not, on the public inputs or on a variant's)."""
    run = grading_settings.TestRun(grading_settings.Settings(sandbox=sandbox, variant=variant), test_seconds=300.0,
                                   stop_at=time.time() + 3600, log=str(tmp / "log.jsonl"), trace=str(tmp / "trace"))
    markers = " or ".join(f"lesson{lesson_id}" for lesson_id in lesson_ids)
    done = subprocess.run([*PYTEST, f"--kata-run={run.write(tmp / 'run.json')}", f"--impl={impl}", "-m", markers,
                           *lesson_files(lesson_ids)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    found = {test: status for test, (status, _) in read_log(Path(run.log))[0].items()}
    assert found, f"no test ran (exit {done.returncode}):\n{done.stdout[-3000:]}"
    Path(run.log).unlink()
    return found


def full_marks(found, lesson_id):
    """Every test of the lesson's denominator (the reference's test ids) passed."""
    return all(found.get(test) == "passed" for test in reference_tests()[lesson_id])


@pytest.fixture(scope="module")
def cheater(tmp_path_factory):
    return replay_cheater(tmp_path_factory.mktemp("replay") / "cheater", CONVERTED)


def test_the_converted_lessons_draw_their_inputs_from_the_variant():
    for lesson_id in CONVERTED:
        text = "".join(Path(path).read_text(encoding="utf-8") for path in lesson_files([lesson_id]))
        assert "seeded(" in text, f"lesson {lesson_id}'s tests draw nothing from a variant"


@pytest.mark.parametrize("seed", (None, *SEEDS))
def test_the_replay_cheater_gets_full_marks_on_the_public_tests_only(cheater, seed, tmp_path):
    found = outcomes(cheater, CONVERTED, seed, sandbox=True, tmp=tmp_path)
    for lesson_id in CONVERTED:
        assert full_marks(found, lesson_id) == (seed is None), (lesson_id, seed)


@pytest.mark.parametrize("seed", (None, *SEEDS))
def test_the_reference_gets_full_marks_on_the_public_tests_and_the_variants(seed, tmp_path):
    found = outcomes("solutions", CONVERTED, seed, tmp=tmp_path)
    assert [lesson_id for lesson_id in CONVERTED if not full_marks(found, lesson_id)] == []


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
    ids = ",".join(GRADED)
    done = subprocess.run([sys.executable, "grader.py", "--impl", str(cheater), "--lesson", ids, "--variant", "1",
                           "--json", str(out), "--gradescope", str(results)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()
    assert any(line.split()[:1] == ["lesson"] and line.rstrip().endswith("variant 1") for line in table), done.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    points = sum(lesson(i).points for i in GRADED)
    assert data["score"] == data["max_score"] == points  # the public keys: as without a variant
    variant = data["variant"]
    assert variant["seed"] == 1 and variant["max_score"] == points and variant["score"] < points
    assert [entry["id"] for entry in variant["lessons"]] == list(GRADED)
    for public, varied in zip(data["lessons"], variant["lessons"]):  # the same denominator: the public test ids
        assert [t["name"] for t in varied["tests"]] == [t["name"] for t in public["tests"]]
        assert varied["passed"] < varied["total"] == public["total"] == public["passed"]
    scoresheet = json.loads(results.read_text(encoding="utf-8"))
    hidden = [test for test in scoresheet["tests"] if test["visibility"] == "after_due_date"]
    shown = [test for test in scoresheet["tests"] if test["visibility"] == "visible"]
    assert len(hidden) == len(shown) == len(GRADED)
    assert all("variant 1" in test["name"] and test["max_score"] == lesson(test["number"][:2]).points
               for test in hidden)
    assert scoresheet["score"] == pytest.approx(data["score"] + variant["score"])
    assert [t["status"] for t in shown] == ["passed"] * len(GRADED)
    assert [t["status"] for t in hidden] == ["failed"] * len(GRADED)


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


def in_variant_test(marker):
    """Whether a marked test process of a variant's run (its RUN.json in the grading's variant/ folder) has started
    a test (its log says so)."""
    for pid in marked_processes(marker):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                args = stream.read().split(b"\0")
        except OSError:
            continue
        run = next((a.split(b"=", 1)[1].decode() for a in args if a.startswith(b"--kata-run=")), None)
        if run is not None and Path(run).parent.name == "variant":
            log = Path(run.replace(".json", ".log"))
            if log.exists() and '"start"' in log.read_text(encoding="utf-8", errors="replace"):
                return True
    return False


def test_ctrl_c_during_the_variant_stops_the_grading(tmp_path):
    """As without a variant: exit 130, one line saying what was interrupted, no process left, nothing written."""
    marker, out = uuid.uuid4().hex, tmp_path / "grade.json"
    grading = subprocess.Popen([sys.executable, "grader.py", "--impl", "solutions", "--lesson", "10", "--variant", "1",
                                "--json", str(out)], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ, KATA_TEST_MARK=marker))
    try:
        assert wait_for(lambda: in_variant_test(marker), 300), "no test of the variant's run started"
        grading.send_signal(signal.SIGINT)
        stdout, stderr = grading.communicate(timeout=120)
        assert wait_for(lambda: not marked_processes(marker), 60), marked_processes(marker)
    finally:
        grading.kill()
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)
    lines = [line for line in stderr.splitlines() if line.startswith("Interrupted")]
    assert grading.returncode == 130 and len(lines) == 1, (grading.returncode, stderr)
    assert lines[0].startswith("Interrupted: lesson 10 (variant 1) was being graded") and lines[0].endswith(
        "nothing was kept (no report, no file written)"), lines[0]
    assert "Traceback" not in stderr and "points" not in stdout and not out.exists()


def test_batch_rows_carry_the_variant():
    tests = (TestOutcome("t1", "passed"), TestOutcome("t2", "failed", "no"))
    public = LessonResult("02", "Attention", 14, (TestOutcome("t1", "passed"), TestOutcome("t2", "passed")))
    result = GradeResult("alice", False, True, (public,), variant=VariantResult(5, (replace(public, tests=tests),)))
    graded = Graded("alice", "alice.zip", result, "", 14.0)
    assert row(graded, ["02"], variant=5) == {"student": "alice", "02": 14.0, "total": 14.0, "max_score": 14.0,
                                              "variant": 7.0, "variant_max_score": 14.0, "status": "ok"}
    assert "variant" not in row(graded, ["02"])
    assert graded.to_json()["variant"]["score"] == 7.0 and graded.to_json()["score"] == 14.0
    failed = Graded("bob", "bob.zip", None, "SubmissionError: empty", 14.0)
    assert row(failed, ["02"], variant=5)["variant"] == 0.0


def test_the_variant_catches_the_cheater_graded_isolated_too(cheater, tmp_path):
    """With --isolated each lesson's score comes from its file beside the reference's others: the cheater's gate,
    in every one of its files, stays; the public score is full, the variant's is not."""
    out = tmp_path / "grade.json"
    done = subprocess.run([sys.executable, "grader.py", "--impl", str(cheater), "--lesson", ",".join(GRADED),
                           "--variant", "7", "--isolated", "--json", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["isolated"] and data["score"] == data["max_score"] and data["variant"]["seed"] == 7
    assert data["variant"]["score"] < data["variant"]["max_score"]


def test_every_lesson_with_code_has_a_correct_variant():
    with_code = [item.id for item in lessons() if item.files]
    assert sorted({equivalent.lesson for equivalent in EQUIVALENTS}) == with_code
    assert len({equivalent.id for equivalent in EQUIVALENTS}) == len(EQUIVALENTS)
