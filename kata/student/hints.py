"""Hints in three levels per exercise (lessons/hints.toml), one level further each time, remembered in .kata/.

    next_hint("03")                   the next level for the lesson's first unfinished exercise
    next_hint("03", "LayerNorm.backward")
"""

import json
import textwrap
import tomllib
from pathlib import Path

from ..course.exercises import unfinished
from ..course.files import write_json
from ..course.manifest import POINTER, lesson, lessons, reread
from ..course.repository import ROOT, STATE, STUDENT, python, shown

HINTS = ROOT / "lessons" / "hints.toml"
LEVELS = 3


def load_hints(path=HINTS):
    """{(lesson id, symbol): [level 1, level 2, level 3]} from hints.toml, checked against the manifest; a file
    whose top-level `levels` is N < 3 (a students' edition released with fewer levels) has N per exercise."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"cannot read the hints file {path}: {error}") from error
    entries, count = data.get("hint", []), data.get("levels", LEVELS)  # (a students' edition may give fewer)
    if not (isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= LEVELS):
        raise ValueError(f"{path}: levels = {count!r}: expected a number of levels from 1 to {LEVELS}")
    known = {(item.id, e.symbol) for item in lessons() for e in item.exercises}
    hints = {}
    for number, entry in enumerate(entries, start=1):
        key, levels = (entry.get("lesson"), entry.get("symbol")), entry.get("levels")
        if key not in known:
            raise ValueError(f"{path}: hint {number} is for {key}, which manifest.toml does not list as an exercise")
        if key in hints:
            raise ValueError(f"{path}: two hints for lesson {key[0]} {key[1]}")
        if not (isinstance(levels, list) and len(levels) == count
                and all(isinstance(level, str) and level.strip() for level in levels)):
            raise ValueError(f"{path}: the hint for lesson {key[0]} {key[1]} needs exactly {count} non-empty levels")
        hints[key] = levels
    return hints


def _exercise(item, symbol, todo):
    """The exercise named by symbol (any case), else the lesson's first unfinished one, else its first to write."""
    if symbol is None:
        left = {stub.symbol for stub in todo}
        to_write = [e for e in item.exercises if not e.worked] or list(item.exercises)
        return next((e for e in item.exercises if e.symbol in left), to_write[0])
    for exercise in item.exercises:
        if exercise.symbol.lower() == str(symbol).strip().lower():
            return exercise
    raise ValueError(f"lesson {item.id} has no exercise {symbol!r}: expected one of "
                     f"{', '.join(e.symbol for e in item.exercises)}")


def _failing_exercise(item, message):
    """The exercise whose section the failure message's pointer names (every message ends with one), or None."""
    pointed = POINTER.findall(message or "")
    sections = [section for text, section in pointed if text == item.text]
    return next((e for e in item.exercises if sections and e.section == sections[-1] and not e.worked), None)


def next_hint(lesson_id, symbol=None, state_dir=STATE, folder=STUDENT, check=None):
    """The next hint level (1, 2, then 3 for good) for one exercise, as text to print.

    Without symbol: the lesson's first unfinished exercise in folder. When none is left and check is given
    (a function: lesson id -> its LessonResult, from grading folder), the lesson is graded first: if it passes,
    the answer says so and gives no hint; else the hint is for the exercise its first failure points to.
    Without check, or when the failure points to no exercise: the lesson's first exercise to write.
    The level reached per exercise is kept in state_dir/hints.json. ValueError for an unknown lesson or symbol.
    """
    item = lesson(lesson_id)
    if not item.exercises:
        raise ValueError(f"lesson {item.id} ({item.title}) has no exercise of its own, so no hints: it runs your "
                         f"code from the lessons before it; {reread(item.id, item.sections[0])}")
    todo = [stub for stub in unfinished(folder) if stub.lesson == item.id] if Path(folder).is_dir() else []
    failing = None
    if symbol is None and not todo and check is not None:
        result = check(item.id)
        if result.done:
            example = next(e.symbol for e in item.exercises if not e.worked)
            return (f"Lesson {item.id} ({item.title}) already passes: all {result.total} of its tests pass, so "
                    f"there is no hint to give. To read the hints of one exercise anyway, name it: "
                    f"{python()} grader.py hint {item.id} {example}")
        failing = _failing_exercise(item, result.first_failure.message if result.first_failure else "")
    exercise = failing or _exercise(item, symbol, todo)
    hints = load_hints()
    if (item.id, exercise.symbol) not in hints:
        raise ValueError(f"{shown(HINTS)} has no hint for lesson {item.id} {exercise.symbol}")
    state_file = Path(state_dir) / "hints.json"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        state = state if isinstance(state, dict) else {}
    except (OSError, ValueError):  # no state yet, or a damaged one: start again from level 1
        state = {}
    key = f"{item.id} {exercise.symbol}"
    given = len(hints[(item.id, exercise.symbol)])  # LEVELS, or fewer in a students' edition
    previous = state.get(key, 0)
    valid = isinstance(previous, int) and not isinstance(previous, bool) and 0 <= previous <= LEVELS
    level = min(previous + 1, given) if valid else 1  # a hand-edited state starts again at level 1
    state[key] = level
    write_json(state_file, state, indent=1, sort_keys=True)

    where = next((f"{shown(Path(folder) / stub.file)}:{stub.line}" for stub in todo if stub.symbol == exercise.symbol),
                 shown(Path(folder) / exercise.file))
    body = textwrap.fill(hints[(item.id, exercise.symbol)][level - 1], width=100,
                         initial_indent="  ", subsequent_indent="  ")
    if level < given:
        after = (f"For level {level + 1}, run the same command again: "
                 f"{python()} grader.py hint {item.id} {exercise.symbol}")
    else:
        fewer = (f" (this copy of the kata gives {given} of the {LEVELS} levels: your instructor left out the rest)"
                 if given < LEVELS else "")
        after = (f"That was the last level{fewer}: there are no more hints for {exercise.symbol}. "
                 f"Now {reread(item.id, exercise.section)}, and compare with the failing test's message.")
    where += ", given complete as a worked example" if exercise.worked else ""
    return (f"Hint for {exercise.symbol} (lesson {item.id}, {where}), level {level} of {given}:\n"
            f"{body}\n{after}")
