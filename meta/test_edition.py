"""The students' edition (kata/instructor/release.py), built once per session into a temporary folder: its stubs
score 0, the reference copied into its exercises/ scores full marks with the recorded values alone, no line of the
reference's solutions is in it, its own `make test` passes, and --hint-levels leaves out the last levels."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib

import pytest

from kata.course.exercises import BEGIN, END
from kata.course.manifest import lessons
from kata.course.repository import REFERENCE, ROOT
from kata.instructor import leaks, release

pytestmark = pytest.mark.meta
LEFT_OUT = ("solutions", "benchmarks", "ARCHITECTURE.md", ".ci", ".git", "kata/instructor", "meta/catalogue",
            "meta/test_adversarial.py", "tests/test_edition.py")


def run(folder, *arguments, check=True, timeout=1800):
    """Python (this one: no new venv) running arguments in folder, with nothing of this checkout on its path."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, *arguments], cwd=folder, capture_output=True, text=True, timeout=timeout,
                          env=env)
    if check:
        assert done.returncode == 0, f"{' '.join(arguments)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


@pytest.fixture(scope="session")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "edition"
    run(ROOT, "grader.py", "release", "--out", str(out))
    return out


@pytest.fixture(scope="session")
def graded(edition, tmp_path_factory):
    """{"stubs": the edition's grader JSON on its own exercises/ (the stubs), and its report;
        "reference": the same for a copy of the edition whose exercises/ holds the reference}."""
    out = tmp_path_factory.mktemp("graded")
    stubs = run(edition, "grader.py", "--json", str(out / "stubs.json"))
    solved = out / "solved"
    shutil.copytree(edition, solved)
    for path in REFERENCE.glob("*.py"):  # a student's finished copy: the reference without its region markers
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        (solved / "exercises" / path.name).write_text("".join(line for line in lines if line.strip() not in (BEGIN, END)),
                                                      encoding="utf-8")
    run(solved, "grader.py", "--json", str(out / "reference.json"))
    return {"stubs": json.loads((out / "stubs.json").read_text(encoding="utf-8")), "report": stubs.stdout,
            "reference": json.loads((out / "reference.json").read_text(encoding="utf-8")), "finished": solved}


def test_the_edition_holds_what_students_need_and_nothing_else(edition):
    for name in LEFT_OUT:
        assert not (edition / name).exists(), f"{name} is in the students' edition"
    for name in ("exercises/layers.py", "tests/recorded", "notebooks/02_attention.ipynb", "checkpoints/pretrained.npz",
                 "kata/course/stubs.json", "CONTRACT.md", "make.py", "requirements.lock", "meta/test_edition.py"):
        assert (edition / name).exists(), f"{name} is not in the students' edition"
    readme = (edition / "README.md").read_text(encoding="utf-8")
    assert "## For instructors" not in readme and "## The instructor's loop" not in readme
    assert "--impl solutions" not in readme
    for path in [edition / "README.md", edition / "CONTRACT.md", *(edition / "lessons").glob("*.md"),
                 *(edition / "notebooks").glob("*.ipynb")]:
        text = path.read_text(encoding="utf-8")
        assert "<!-- edition" not in text, f"{path.name} keeps an edition marker"
        # (CONTRACT.md keeps the JSON's "isolated" field, always false in the edition)
        assert path.name == "CONTRACT.md" or "--isolated" not in text, f"{path.name} names --isolated"
    assert "grader.py release" not in (edition / "CONTRACT.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("lesson_id", [item.id for item in lessons()])
def test_the_stubs_score_0(graded, lesson_id):
    result = next(entry for entry in graded["stubs"]["lessons"] if entry["id"] == lesson_id)
    assert result["total"] > 0 and result["score"] == 0 and result["passed"] == 0, result


def test_the_grader_shows_the_0_table_and_the_next_step(graded):
    total = sum(item.points for item in lessons())
    assert f"0/{total} points" in graded["report"] and "Next step: open exercises/" in graded["report"], graded["report"]


@pytest.mark.parametrize("lesson_id", [item.id for item in lessons()])
def test_the_reference_in_its_exercises_scores_full_marks_with_the_recorded_values(graded, lesson_id):
    result = next(entry for entry in graded["reference"]["lessons"] if entry["id"] == lesson_id)
    failing = [f"{test['name']}: {test['message'][:200]}" for test in result["tests"] if test["status"] != "passed"]
    assert result["score"] == result["max_score"] and not failing, "\n".join(failing)


def test_no_line_of_the_reference_solutions_is_in_the_edition(edition):
    hits = leaks.scan(edition)
    assert not hits, f"{len(hits)} lines of solutions/' solution regions are in the edition:\n" + "\n".join(
        map(str, hits))


def test_the_leak_scan_finds_a_solution_line(tmp_path):
    """The scan is not blind: a line of a solution region, in a file or a notebook cell, is found."""
    wanted = leaks.solution_lines()
    line = next(iter(wanted))
    (tmp_path / "notes.md").write_text(f"intro\n    {line}\n", encoding="utf-8")
    (tmp_path / "n.ipynb").write_text(json.dumps({"cells": [{"source": ["a = 1\n", line]}]}), encoding="utf-8")
    assert [(hit.file, hit.line) for hit in leaks.scan(tmp_path)] == [("n.ipynb cell 0", 2), ("notes.md", 2)]


@pytest.mark.parametrize("copy", ["fresh", "finished"])
def test_the_editions_own_make_test_passes(edition, graded, copy):
    """In the edition as released (stubs in exercises/) and in a student's finished copy (the reference there)."""
    folder = edition if copy == "fresh" else graded["finished"]
    spec = importlib.util.spec_from_file_location(f"edition_make_{copy}", folder / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    assert make.EDITION
    command = next(entry[4] for entry in make.TARGETS if entry[0] == "test")
    run(folder, *command)
    listed = make.help_text()
    assert all(f"  {name} " not in listed for name in make.NEEDS_REFERENCE), listed


def test_the_edition_refuses_the_reference_in_one_line(edition):
    done = run(edition, "grader.py", "--impl", "solutions", check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no reference implementation" in done.stderr


def test_the_leak_scan_finds_a_line_without_its_comment_and_inside_a_longer_one(tmp_path):
    """A copy that drops the reference's comment, respaces the line or puts it in a sentence is found too."""
    commented = next(text for text, where in leaks.solution_lines().items()
                     if len(text) >= leaks.SUBSTRING and "#" in _line(where))
    (tmp_path / "a.py").write_text(f"x = 1;  {commented.replace(' ', '  ')}\n", encoding="utf-8")
    (tmp_path / "hint.md").write_text(f"Hint: write `{commented}` and you are done.\n", encoding="utf-8")
    assert [(hit.file, hit.text) for hit in leaks.scan(tmp_path)] == [("a.py", commented), ("hint.md", commented)]


def _line(where):
    """The reference's line at 'solutions/file.py:N'."""
    name, number = where.rsplit(":", 1)
    return (ROOT / name).read_text(encoding="utf-8").splitlines()[int(number) - 1]


def test_the_last_hint_level_is_left_out_by_default_and_named_when_given(edition, tmp_path):
    """The default edition gives 2 levels (the third quotes the reference); --hint-levels 3 gives all, and the
    release names every line of the reference that the edition then holds."""
    assert tomllib.loads((edition / "lessons" / "hints.toml").read_text(encoding="utf-8"))["levels"] == 2
    said = []
    release.release(tmp_path / "all-levels", 3, say=said.append, recorded_from=edition / "tests" / "recorded")
    named = [line for line in said if "lessons/hints.toml:" in line]
    assert named and any("warning:" in line for line in said), said


def test_hint_levels_leaves_out_the_last_level(edition, tmp_path):
    out = tmp_path / "edition-2-levels"
    release.release(out, 2, say=lambda *_: None, recorded_from=edition / "tests" / "recorded")
    full = tomllib.loads((ROOT / "lessons" / "hints.toml").read_text(encoding="utf-8"))["hint"]
    text = (out / "lessons" / "hints.toml").read_text(encoding="utf-8")
    given = tomllib.loads(text)
    assert given["levels"] == 2 and len(given["hint"]) == len(full)
    for entry, shipped in zip(full, given["hint"]):
        assert shipped["levels"] == entry["levels"][:2]
        assert entry["levels"][2] not in text
    said = [run(out, "grader.py", "hint", "03").stdout for _ in range(3)]
    assert "level 1 of 2" in said[0] and "level 2 of 2" in said[1] and "level 2 of 2" in said[2], said
    assert "left out the rest" in said[2] and "no more hints" in said[2], said[2]


@pytest.mark.parametrize("levels", ["0", "4", "two"])
def test_a_bad_number_of_hint_levels_is_refused_before_any_work(tmp_path, levels):
    done = run(ROOT, "grader.py", "release", "--out", str(tmp_path / "edition"), "--hint-levels", levels,
               check=False)
    assert done.returncode == 2 and "--hint-levels" in done.stderr and not (tmp_path / "edition").exists()


def test_release_never_writes_into_a_folder_that_holds_anything(tmp_path):
    (tmp_path / "mine.txt").write_text("my work", encoding="utf-8")
    done = run(ROOT, "grader.py", "release", "--out", str(tmp_path), check=False)
    assert done.returncode == 2 and "not an empty folder" in done.stderr, done.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["mine.txt"]


def test_edition_text_drops_keeps_and_refuses_unpaired_markers():
    text = ("a\n<!-- edition: leave out -->\nb\n<!-- edition: end -->\n<!-- edition: only\nc\n-->\n"
            "| row | x | <!-- edition: leave out this line -->\nd\n")
    assert release.edition_text(text) == "a\nc\nd\n"
    for broken in ("<!-- edition: leave out -->\nb\n", "<!-- edition: end -->\n",
                   "<!-- edition: only\n<!-- edition: leave out -->\n-->\n"):
        with pytest.raises(ValueError):
            release.edition_text(broken)
