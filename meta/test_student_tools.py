"""Tests of the student tools (kata/student/) and of lessons/hints.toml."""

import io
import json
import shutil
import threading
import time
import tomllib

import pytest

from kata.course.exercises import generate, unfinished
from kata.course.manifest import lessons, reread
from kata.course.repository import ROOT
from kata.student import hints, reset, watch

pytestmark = pytest.mark.meta

EXERCISES = [(item.id, e) for item in lessons() for e in item.exercises]


def flat(text):
    """Text with its whitespace collapsed, so wrapped hints compare with the file's."""
    return " ".join(text.split())


@pytest.fixture
def exercises_copy(tmp_path, stubs):
    folder = tmp_path / "exercises"
    shutil.copytree(stubs, folder)
    return folder


# ---------------------------------------------------------------- hints.toml

def test_hints_cover_every_exercise_with_three_levels():
    entries = tomllib.loads((ROOT / "lessons" / "hints.toml").read_text())["hint"]
    keys = [(entry.get("lesson"), entry.get("symbol")) for entry in entries]
    expected = [(lesson_id, e.symbol) for lesson_id, e in EXERCISES]
    assert sorted(keys) == sorted(expected), (
        f"hints.toml must have one hint per exercise of manifest.toml; missing "
        f"{sorted(set(expected) - set(keys))}, unknown {sorted(set(keys) - set(expected))}")
    assert len(keys) == len(set(keys)), f"hints.toml has duplicate entries: {keys}"
    for entry in entries:
        where = f"hints.toml, lesson {entry['lesson']} {entry['symbol']}"
        assert set(entry) == {"lesson", "symbol", "levels"}, f"{where}: unexpected keys {sorted(entry)}"
        levels = entry["levels"]
        assert len(levels) == 3 and all(isinstance(t, str) and t.strip() for t in levels), (
            f"{where}: expected exactly 3 non-empty levels, got {levels!r}")
        assert len(set(map(flat, levels))) == 3, f"{where}: the three levels must differ"
    assert set(hints.load_hints()) == set(expected)


def test_load_hints_rejects_a_bad_file(tmp_path):
    bad = tmp_path / "hints.toml"
    bad.write_text('[[hint]]\nlesson = "03"\nsymbol = "Linear.forward"\nlevels = ["one", "two"]\n')
    with pytest.raises(ValueError, match="exactly 3"):
        hints.load_hints(bad)
    bad.write_text('[[hint]]\nlesson = "03"\nsymbol = "Linear.sideways"\nlevels = ["a", "b", "c"]\n')
    with pytest.raises(ValueError, match="does not list"):
        hints.load_hints(bad)


# ---------------------------------------------------------------- next_hint

def test_next_hint_advances_level_by_level_and_stays_at_three(tmp_path):
    levels = hints.load_hints()[("03", "LayerNorm.backward")]
    shown = [hints.next_hint("03", "LayerNorm.backward", state_dir=tmp_path) for _ in range(4)]
    for level, text in enumerate(shown[:3], start=1):
        assert f"level {level} of 3" in text, text
        assert flat(levels[level - 1]) in flat(text), f"level {level} should show its text:\n{text}"
    assert "no more" in shown[2] and reread("03", "LayerNorm backward") in shown[2], shown[2]
    assert "no more" not in shown[1]
    assert shown[3] == shown[2], "after level 3 the hint stays at level 3"
    state = json.loads((tmp_path / "hints.json").read_text())
    assert state == {"03 LayerNorm.backward": 3}
    other = hints.next_hint("lesson3", "linear.FORWARD", state_dir=tmp_path)  # lenient id and case
    assert "Linear.forward" in other and "level 1 of 3" in other, other


def test_next_hint_without_symbol_picks_the_first_unfinished_exercise(tmp_path, exercises_copy):
    loss = exercises_copy / "loss.py"
    text = loss.read_text()
    start = text.index('# EXERCISE lesson06 "Cross-entropy"')
    stub = text[start:text.index("\n", text.index("raise NotImplementedError", start)) + 1]
    loss.write_text(text.replace(stub, "# EXERCISE kept by the student\n        return 0.0\n"))
    text = hints.next_hint("06", state_dir=tmp_path, folder=exercises_copy)
    assert text.startswith("Hint for CrossEntropyLoss.backward (lesson 06, ") and "level 1 of 3" in text, text
    done = hints.next_hint("06", state_dir=tmp_path, folder=ROOT / "solutions")
    assert done.startswith("Hint for CrossEntropyLoss.forward"), "nothing unfinished: the lesson's first exercise"


def test_a_finished_lesson_that_passes_gets_no_hint_but_says_so(tmp_path):
    from kata.grading.grade import grade

    asked = []

    def check(lesson_id):
        asked.append(lesson_id)
        return grade("solutions", [lesson_id]).lessons[0]

    text = hints.next_hint("06", state_dir=tmp_path, folder=ROOT / "solutions", check=check)
    assert asked == ["06"], "no stub is left in the folder: the lesson is graded before any hint"
    assert text.startswith("Lesson 06 (Softmax and cross-entropy loss) already passes"), text
    assert "Hint for" not in text and "grader.py hint 06 CrossEntropyLoss.forward" in text, text
    assert not (tmp_path / "hints.json").exists(), "no hint was given: no level is used up"
    named = hints.next_hint("06", "CrossEntropyLoss.backward", state_dir=tmp_path, folder=ROOT / "solutions",
                            check=check)
    assert asked == ["06"] and named.startswith("Hint for CrossEntropyLoss.backward") and "level 1 of 3" in named


def test_a_finished_lesson_that_fails_gets_the_hint_its_failure_points_to(tmp_path, exercises_copy):
    from kata.grading.results import LessonResult, TestOutcome

    failure = TestOutcome("tests/test_lesson03_layers.py::test_x", "failed",
                          f"dx is wrong; {reread('03', 'LayerNorm backward')}")
    failing = LessonResult("03", "layers", 12, (TestOutcome("t", "passed"), failure))
    text = hints.next_hint("03", state_dir=tmp_path, folder=ROOT / "solutions", check=lambda _: failing)
    assert text.startswith("Hint for LayerNorm.backward (lesson 03, ") and "level 1 of 3" in text, text
    unpointed = LessonResult("03", "layers", 12, (TestOutcome("t", "error", "ImportError"),))
    text = hints.next_hint("03", state_dir=tmp_path, folder=ROOT / "solutions", check=lambda _: unpointed)
    assert text.startswith("Hint for Linear.forward"), "no pointer: the lesson's first exercise"

    def never(_):
        raise AssertionError("a lesson with stubs left is not graded for a hint")

    text = hints.next_hint("03", state_dir=tmp_path, folder=exercises_copy, check=never)
    assert text.startswith("Hint for Linear.forward") and "level 2 of 3" in text, text


def test_unknown_lesson_or_symbol_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown lesson '42'.*00, 01"):
        hints.next_hint("42", state_dir=tmp_path)
    with pytest.raises(ValueError, match="no exercise 'LayerNorm.sideways'.*LayerNorm.backward"):
        hints.next_hint("03", "LayerNorm.sideways", state_dir=tmp_path)
    with pytest.raises(ValueError, match="no exercise of its own"):
        hints.next_hint("10", state_dir=tmp_path)
    assert not (tmp_path / "hints.json").exists(), "a refused request must not change the state"


# ---------------------------------------------------------------- unfinished

def test_unfinished_lists_every_stub_in_manifest_order(stubs):
    found = unfinished(stubs)
    expected = [(lesson_id, e.symbol, e.file, e.section) for lesson_id, e in EXERCISES if not e.worked]
    assert [(i, s, f, sec) for i, s, f, _, sec in found] == expected
    for _, symbol, file, line, _ in found:
        assert f"write {symbol} here" in (stubs / file).read_text().splitlines()[line - 1]
    assert unfinished(ROOT / "solutions") == []
    with pytest.raises(ValueError, match="no folder"):
        unfinished(ROOT / "no-such-folder")


def test_a_stub_whose_raise_is_gone_is_finished(exercises_copy):
    layers = exercises_copy / "layers.py"
    lines = layers.read_text().splitlines(keepends=True)
    marker = next(n for n, line in enumerate(lines) if "write ReLU.backward here" in line)
    lines[marker + 1] = "        return grad_output * self.cache\n"  # the student's code, marker kept
    layers.write_text("".join(lines))
    symbols = [s for _, s, *_ in unfinished(exercises_copy)]
    assert "ReLU.backward" not in symbols and "ReLU.forward" in symbols


# ---------------------------------------------------------------- reset

def test_reset_restores_the_stubs_and_keeps_a_backup(tmp_path, exercises_copy):
    stubs, backup_root = generate(), tmp_path / "backup"
    edited = "# my own work\n" + stubs["training.py"]
    (exercises_copy / "training.py").write_text(edited)
    (exercises_copy / "optim.py").unlink()
    backups = reset.reset("08", folder=exercises_copy, backup_root=backup_root)
    assert [p.name for p in backups] == ["training.py"], backups
    assert backups[0].parent.parent == backup_root and backups[0].read_text() == edited
    for name in ("training.py", "optim.py"):
        assert (exercises_copy / name).read_text() == stubs[name]
    assert reset.reset("08", folder=exercises_copy, backup_root=backup_root) == [], "nothing left to back up"


def test_reset_refuses_the_reference_and_bad_input(tmp_path, monkeypatch):
    # never the real solutions/: a broken guard would overwrite it
    fake_root = tmp_path / "repo"
    shutil.copytree(ROOT / "solutions", fake_root / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    before = (fake_root / "solutions" / "layers.py").read_text()
    with pytest.raises(ValueError, match="refusing to reset"):  # found by its solution regions
        reset.reset("03", folder=fake_root / "solutions", backup_root=tmp_path / "backup")
    (fake_root / "solutions" / "layers.py").write_text("# a student's own work\n")
    monkeypatch.setattr(reset, "REFERENCE", fake_root / "solutions")
    with pytest.raises(ValueError, match="refusing to reset"):  # found by its path
        reset.reset("03", folder=fake_root / "solutions", backup_root=tmp_path / "backup")
    monkeypatch.undo()
    assert (fake_root / "solutions" / "layers.py").read_text() == "# a student's own work\n"
    (fake_root / "solutions" / "layers.py").write_text(before)
    with pytest.raises(ValueError, match="unknown lesson"):
        reset.reset("99", folder=tmp_path, backup_root=tmp_path)
    with pytest.raises(ValueError, match="__init__.py"):
        reset.reset("03", folder=tmp_path, backup_root=tmp_path)
    assert not (tmp_path / "backup").exists()


# ---------------------------------------------------------------- watch

def run_watch(timeout=5.0, **kwargs):
    """watch() in a thread, so that a watcher that never stops fails the test instead of hanging it."""
    errors = []

    def target():
        try:
            watch.watch(**kwargs)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"watch did not stop within {timeout} s"
    assert not errors, f"watch raised {errors[0]!r}"


class IdleKeyboard:
    """A stdin nobody types on: readline blocks, as a terminal's does, until the test releases it."""

    def __init__(self):
        self.released = threading.Event()

    def readline(self):
        self.released.wait()
        return ""


def test_watch_reruns_when_a_py_file_is_saved(tmp_path):
    (tmp_path / "layers.py").write_text("x = 1\n")
    calls, saved = [], {}

    def save():
        time.sleep(0.15)
        (tmp_path / "notes.txt").write_text("not python")  # not a .py file: no run
        (tmp_path / ".#layers.py").write_text("an editor's lock file")  # hidden: no run
        time.sleep(0.25)
        saved["at"] = time.monotonic()
        (tmp_path / "layers.py").write_text("x = 22\n")

    keyboard = IdleKeyboard()
    threading.Thread(target=save, daemon=True).start()
    try:
        run_watch(run=lambda: calls.append(time.monotonic()), folder=tmp_path, interval=0.02, stdin=keyboard,
                  max_runs=2, out=io.StringIO())
    finally:
        keyboard.released.set()
    assert len(calls) == 2 and calls[1] >= saved["at"], "the second run must follow the .py save, not the .txt or the hidden file"


def test_watch_enter_reruns_and_end_of_input_stops(tmp_path):
    calls, out = [], io.StringIO()
    run_watch(run=lambda: calls.append(1), folder=tmp_path, interval=0.02, stdin=io.StringIO("\n\n"), out=out)
    assert len(calls) == 3, f"one run, then one per Enter, then the end of stdin stops it; got {len(calls)}"
    assert "press Enter" in out.getvalue()


def test_watch_survives_a_failing_run_and_stops_on_ctrl_c(tmp_path):
    calls, out = [], io.StringIO()

    def run():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a broken submission")
        raise KeyboardInterrupt

    run_watch(run=run, folder=tmp_path, interval=0.02, stdin=io.StringIO("\n\n\n"), out=out)
    assert len(calls) == 2 and "a broken submission" in out.getvalue()
    with pytest.raises(ValueError, match="no folder"):
        watch.watch(lambda: None, folder=tmp_path / "missing", stdin=None)


def test_an_error_inside_an_exercise_points_to_its_section():
    from kata.course.exercises import exercise_at, pointer_for

    source = (ROOT / "solutions" / "layers.py").read_text().splitlines()
    in_backward = next(i for i, line in enumerate(source, 1) if "inv_std * (d_hat" in line)
    lesson_id, exercise = exercise_at(ROOT / "solutions" / "layers.py", in_backward)
    assert (lesson_id, exercise.symbol) == ("03", "LayerNorm.backward")
    assert pointer_for(ROOT / "exercises" / "layers.py", 1) == ""  # the module docstring is no exercise
    data = (ROOT / "solutions" / "data.py").read_text().splitlines()
    in_generate = next(i for i, line in enumerate(data, 1) if "default_rng(seed)" in line)
    assert pointer_for(ROOT / "solutions" / "data.py", in_generate) == (
        'raised in generate_tokenized_dataset: reread lessons/00_task_and_data.md, section "Generating examples"')
