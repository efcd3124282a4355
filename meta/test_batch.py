"""Tests of batch grading: finding the implementation in a submission, and the CSV and JSON of a whole folder."""

import csv
import json
import os
import shutil
import zipfile

import pytest

from kata.course.files import write_atomic
from kata.course.manifest import lesson
from kata.course.repository import ROOT
from kata.grading import batch
from kata.grading.messages import rename
from kata.grading.results import GradeResult, LessonResult, TestOutcome
from kata.grading.submission import MAX_ZIP_ENTRIES, SubmissionError, prepare

pytestmark = pytest.mark.meta


def zip_folder(folder, archive, prefix=""):
    with zipfile.ZipFile(archive, "w") as opened:
        for path in sorted(folder.glob("*.py")):
            opened.write(path, prefix + path.name)
    return archive


def same_files(folder, reference):
    return all((folder / p.name).read_text() == p.read_text() for p in reference.glob("*.py"))


def test_prepare_finds_the_implementation_however_it_is_laid_out(tmp_path):
    flat = tmp_path / "flat"
    shutil.copytree(ROOT / "solutions", flat)
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "solutions", clone / "exercises")
    shutil.copytree(ROOT / "exercises", clone / "solutions")  # another folder of kata files: exercises/ must win
    (clone / "README.md").write_text("my kata")
    zipped = zip_folder(ROOT / "solutions", tmp_path / "zipped.zip", prefix="kata-main/exercises/")
    upload = tmp_path / "upload"  # Gradescope left the uploaded zip unextracted
    upload.mkdir()
    zip_folder(ROOT / "solutions", upload / "work.zip")
    shown = {"flat": "flat", "clone": "clone/exercises", "zipped.zip": "zipped.zip/kata-main/exercises",
             "upload": "upload"}
    for number, submission in enumerate([flat, clone, zipped, upload]):
        folder, notes, where = prepare(submission, tmp_path / f"work{number}")
        assert folder == tmp_path / f"work{number}" / "implementation"
        assert same_files(folder, ROOT / "solutions"), f"{submission.name}: the copied files differ from solutions/"
        assert notes == [], f"{submission.name}: nothing was missing, yet notes {notes}"
        assert where == shown[submission.name]


def test_prepare_adds_a_missing_init_and_says_so(tmp_path):
    loose = tmp_path / "loose"  # files uploaded one by one, without __init__.py
    loose.mkdir()
    shutil.copy(ROOT / "solutions" / "layers.py", loose)
    folder, notes, _ = prepare(loose, tmp_path / "work", name="bob")
    assert sorted(p.name for p in folder.iterdir()) == ["__init__.py", "layers.py"], "other missing files are grade()'s"
    assert (folder / "__init__.py").read_text() == (ROOT / "exercises" / "__init__.py").read_text()
    assert notes == ["__init__.py was not in the submission: the one of exercises/ was used."]


def test_rename_replaces_the_temporary_folder_everywhere(tmp_path):
    data = {"a": [f"{tmp_path}/x/loss.py:3: boom", 1.5], "b": {"c": str(tmp_path / "x")}}
    assert rename(data, tmp_path / "x", "alice") == {"a": ["alice/loss.py:3: boom", 1.5], "b": {"c": "alice"}}


@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"), ("empty", "nothing to grade"), ("text_only", "no Python file"),
    ("bad.zip", "not a readable zip"), ("notes.txt", "neither a folder nor a .zip"),
    ("other_python", "none named like the kata's")])
def test_prepare_explains_what_it_cannot_grade(tmp_path, case, expected):
    path = tmp_path / case
    if case in ("empty", "text_only", "other_python"):
        path.mkdir()
    if case == "text_only":
        (path / "answers.txt").write_text("42")
    if case == "other_python":
        (path / "homework.py").write_text("x = 1\n")
    if case in ("bad.zip", "notes.txt"):
        path.write_text("not a zip")
    with pytest.raises(SubmissionError) as caught:
        prepare(path, tmp_path / "work")
    assert expected in str(caught.value)
    assert "expected the files of exercises/" in str(caught.value), "the message must say what was expected"


def test_unknown_lesson_and_missing_folder_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown lesson 42"):
        batch.batch(tmp_path, tmp_path / "out", lesson_ids=["42"])
    with pytest.raises(ValueError, match="is not a folder"):
        batch.batch(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(ValueError, match="holds no submission"):
        batch.batch(tmp_path, tmp_path / "out")


def test_batch_grades_a_folder_of_submissions(tmp_path, capsys, stubs):
    submissions = tmp_path / "submissions"
    shutil.copytree(ROOT / "solutions", submissions / "alice")  # complete
    zip_folder(stubs, submissions / "bob.zip", prefix="exercises/")  # the pristine stubs
    (submissions / "carol").mkdir()  # submitted nothing
    (submissions / "dave.zip").write_bytes(b"PK but not really a zip")
    (submissions / ".DS_Store").write_text("")  # hidden files are not students
    out = submissions / "grades"  # the output folder inside the submissions folder is not a student either
    rows = batch.batch(submissions, out, workers=2, lesson_ids=["06"], allow_unconfined=True)  # trusted code

    points = float(lesson("06").points)
    assert [r["student"] for r in rows] == ["alice", "bob", "carol", "dave"]
    with open(out / "grades.csv", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert list(table[0]) == ["student", "06", "total", "max_score", "status"]
    by_name = {line["student"]: line for line in table}
    assert [line["student"] for line in table] == ["alice", "bob", "carol", "dave"], "rows sorted by student"
    assert by_name["alice"] == {"student": "alice", "06": str(points), "total": str(points),
                                "max_score": str(points), "status": "ok"}
    assert (by_name["bob"]["06"], by_name["bob"]["total"], by_name["bob"]["status"]) == ("0.0", "0.0", "ok")
    assert float(by_name["carol"]["total"]) == 0 and "nothing to grade" in by_name["carol"]["status"]
    assert float(by_name["dave"]["max_score"]) == points and "not a readable zip" in by_name["dave"]["status"]

    alice = json.loads((out / "alice.json").read_text())
    assert alice["student"] == "alice" and alice["error"] == "" and alice["score"] == points
    assert [(e["id"], e["passed"] == e["total"] > 0) for e in alice["lessons"]] == [("06", True)]
    bob = json.loads((out / "bob.json").read_text())
    assert bob["lessons"][0]["passed"] == 0 and "is not implemented yet" in bob["lessons"][0]["tests"][0]["message"]
    assert "nothing to grade" in json.loads((out / "carol.json").read_text())["error"]
    assert sorted(p.name for p in out.iterdir()) == ["alice.json", "bob.json", "carol.json", "dave.json", "grades.csv"]
    progress = capsys.readouterr().out
    assert f"alice: {points:g}/{points:g} points" in progress and "dave: ERROR" in progress
    assert sum(line.startswith("[") for line in progress.splitlines()) == 4, "one progress line per student"


def test_one_crashing_grade_does_not_stop_the_batch(tmp_path, monkeypatch):
    def fake_grade(impl, lesson_ids=None, isolated=False, **options):
        if "boom" in (ROOT / impl / "loss.py").read_text():
            raise RuntimeError("the grader fell over")
        return GradeResult(impl, isolated, False, (LessonResult("06", "t", 6, (TestOutcome("test_x", "passed"),)),),
                           execution_time=0.1)

    monkeypatch.setattr(batch, "grade", fake_grade)
    for name in ("ann", "ben", "cid"):
        shutil.copytree(ROOT / "solutions", tmp_path / "in" / name)
    (tmp_path / "in" / "ben" / "loss.py").write_text("boom = 1\n")
    rows = batch.batch(tmp_path / "in", tmp_path / "out", workers=3, lesson_ids=["6"])
    assert [(r["student"], r["06"], r["status"]) for r in rows] == [
        ("ann", 6.0, "ok"), ("ben", 0.0, "RuntimeError: the grader fell over"), ("cid", 6.0, "ok")]
    assert json.loads((tmp_path / "out" / "ben.json").read_text())["error"] == "RuntimeError: the grader fell over"


def test_write_atomic_replaces_a_file_whole_or_not_at_all(tmp_path):
    path = tmp_path / "out" / "grades.csv"
    write_atomic(path, "student,total\n")
    write_atomic(path, b"\x00binary")
    assert path.read_bytes() == b"\x00binary"
    with pytest.raises(AttributeError):  # fails while writing: the old file stays, no temporary is left
        write_atomic(path, 42)
    assert path.read_bytes() == b"\x00binary" and [p.name for p in path.parent.iterdir()] == ["grades.csv"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "a written file gets the usual permissions"


def test_a_zip_of_too_many_entries_is_refused_before_its_directory_is_read(tmp_path, monkeypatch):
    """Skipped entries (__MACOSX/...) cost nothing to grade but everything to list: the count the archive announces
    at its end is checked first, and the archive is not opened at all."""
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for number in range(MAX_ZIP_ENTRIES + 1):
            handle.writestr(f"__MACOSX/._{number}", b"")
        handle.writestr("exercises/loss.py", "x = 1\n")

    def never(*args, **kwargs):
        raise AssertionError("the archive was opened: its whole directory was read")
    monkeypatch.setattr(zipfile, "ZipFile", never)
    with pytest.raises(SubmissionError, match=f"holds {MAX_ZIP_ENTRIES + 2:,} entries"):
        prepare(archive, tmp_path / "work")
