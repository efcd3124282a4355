"""Student conveniences in the spirit of rustlings: what is left to do, hints level by level, reset, watch.

    unfinished(folder)           the stubs still to write, in manifest order
    next_hint(lesson, symbol)    the next of three hint levels (lessons/hints.toml), remembered in .kata/
    reset(lesson, folder)        the lesson's files back to the generated stubs, the student's copy kept
    watch(run, folder)           run() again at every save of a .py file, or when Enter is pressed
    exercise_at(file, line)      the exercise whose code holds a line: where an error inside it sends the student
"""

import ast
import datetime
import json
import queue
import re
import shutil
import sys
import textwrap
import threading
import tomllib
import traceback
from pathlib import Path

from . import stubs
from .files import write_atomic, write_json
from .manifest import ROOT, lessons, python, reread

HINTS = ROOT / "lessons" / "hints.toml"
STATE_DIR = ROOT / ".kata"
LEVELS = 3
# the line kata/stubs.py writes above each stub's `raise NotImplementedError`
MARKER = re.compile(r'^(\s*)# EXERCISE lesson(\d+) "([^"]*)": write (\S+) here\s*$')


def find_lesson(lesson_id):
    """The manifest's lesson for '3', '03' or 'lesson03'; ValueError listing the valid ids otherwise."""
    text = str(lesson_id).strip().lower().removeprefix("lesson")
    text = text.zfill(2) if text.isdigit() else text
    for item in lessons():
        if item.id == text:
            return item
    raise ValueError(f"unknown lesson {lesson_id!r}: expected one of {', '.join(i.id for i in lessons())}")


def _folder(folder):
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"no folder {folder}: expected an implementation folder laid out like exercises/")
    return path


def shown(path):
    """A path as a student reads it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _still_raises(lines, start, indent):
    """Whether the block after a marker (up to a line indented less than it) still raises NotImplementedError."""
    for line in lines[start:]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(line) - len(line.lstrip()) < len(indent):
            return False
        if stripped.startswith("raise NotImplementedError"):
            return True
    return False


def unfinished(folder=ROOT / "exercises"):
    """[(lesson id, symbol, file name, line, section)] of every stub of folder, in manifest order.

    A stub is an `# EXERCISE lessonNN "Section": write Symbol here` line whose block still raises
    NotImplementedError; the line number is the marker's. Markers the manifest does not know come last.
    """
    folder = _folder(folder)
    order = {(item.id, e.symbol): n for n, (item, e) in
             enumerate((item, e) for item in lessons() for e in item.exercises)}
    found = []
    for path in sorted(folder.glob("*.py")):
        lines = path.read_text(errors="replace").splitlines()
        for number, line in enumerate(lines, start=1):
            match = MARKER.match(line)
            if match and _still_raises(lines, number, match[1]):
                found.append((match[2], match[4], path.name, number, match[3]))
    return sorted(found, key=lambda f: (order.get((f[0], f[1]), len(order)), f[2], f[3]))


def load_hints(path=HINTS):
    """{(lesson id, symbol): [level 1, level 2, level 3]} from hints.toml, checked against the manifest."""
    try:
        entries = tomllib.loads(Path(path).read_text()).get("hint", [])
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"cannot read the hints file {path}: {error}") from error
    known = {(item.id, e.symbol) for item in lessons() for e in item.exercises}
    hints = {}
    for number, entry in enumerate(entries, start=1):
        key, levels = (entry.get("lesson"), entry.get("symbol")), entry.get("levels")
        if key not in known:
            raise ValueError(f"{path}: hint {number} is for {key}, which manifest.toml does not list as an exercise")
        if key in hints:
            raise ValueError(f"{path}: two hints for lesson {key[0]} {key[1]}")
        if not (isinstance(levels, list) and len(levels) == LEVELS
                and all(isinstance(level, str) and level.strip() for level in levels)):
            raise ValueError(f"{path}: the hint for lesson {key[0]} {key[1]} needs exactly {LEVELS} non-empty levels")
        hints[key] = levels
    return hints


def _exercise(item, symbol, todo):
    """The exercise named by symbol (any case), else the lesson's first unfinished one, else its first to write."""
    if symbol is None:
        left = {s for _, s, *_ in todo}
        to_write = [e for e in item.exercises if not e.worked] or list(item.exercises)
        return next((e for e in item.exercises if e.symbol in left), to_write[0])
    for exercise in item.exercises:
        if exercise.symbol.lower() == str(symbol).strip().lower():
            return exercise
    raise ValueError(f"lesson {item.id} has no exercise {symbol!r}: expected one of "
                     f"{', '.join(e.symbol for e in item.exercises)}")


def next_hint(lesson_id, symbol=None, state_dir=STATE_DIR, folder=ROOT / "exercises"):
    """The next hint level (1, 2, then 3 for good) for one exercise, as text to print.

    Without symbol: the lesson's first unfinished exercise in folder, or its first exercise when all are done.
    The level reached per exercise is kept in state_dir/hints.json. ValueError for an unknown lesson or symbol.
    """
    item = find_lesson(lesson_id)
    if not item.exercises:
        raise ValueError(f"lesson {item.id} ({item.title}) has no exercise of its own, so no hints: it runs your "
                         f"code from the lessons before it; {reread(item.id, item.sections[0])}")
    todo = [entry for entry in unfinished(folder) if entry[0] == item.id] if Path(folder).is_dir() else []
    exercise = _exercise(item, symbol, todo)
    hints = load_hints()
    if (item.id, exercise.symbol) not in hints:
        raise ValueError(f"{shown(HINTS)} has no hint for lesson {item.id} {exercise.symbol}")
    state_file = Path(state_dir) / "hints.json"
    try:
        state = json.loads(state_file.read_text())
        state = state if isinstance(state, dict) else {}
    except (OSError, ValueError):  # no state yet, or a damaged one: start again from level 1
        state = {}
    key = f"{item.id} {exercise.symbol}"
    previous = state.get(key, 0)
    valid = isinstance(previous, int) and not isinstance(previous, bool) and 0 <= previous <= LEVELS
    level = min(previous + 1, LEVELS) if valid else 1  # a hand-edited state starts again at level 1
    state[key] = level
    write_json(state_file, state, indent=1, sort_keys=True)

    where = next((f"{shown(Path(folder) / file)}:{line}" for _, s, file, line, _ in todo if s == exercise.symbol),
                 shown(Path(folder) / exercise.file))
    body = textwrap.fill(hints[(item.id, exercise.symbol)][level - 1], width=100,
                         initial_indent="  ", subsequent_indent="  ")
    if level < LEVELS:
        after = (f"For level {level + 1}, run the same command again: "
                 f"{python()} grader.py hint {item.id} {exercise.symbol}")
    else:
        after = (f"That was the last level: there are no more hints for {exercise.symbol}. "
                 f"Now {reread(item.id, exercise.section)}, and compare with the failing test's message.")
    where += ", given complete as a worked example" if exercise.worked else ""
    return (f"Hint for {exercise.symbol} (lesson {item.id}, {where}), level {level} of {LEVELS}:\n"
            f"{body}\n{after}")


def reset(lesson_id, folder=ROOT / "exercises", backup_root=STATE_DIR / "backup"):
    """Put the lesson's files of folder back to the generated stubs; returns the backups of what was replaced.

    A file that differs from its stub is first copied to backup_root/<timestamp>/<file>. Prints nothing.
    """
    item = find_lesson(lesson_id)
    folder = _folder(folder)
    reference = folder == (ROOT / "solutions").resolve() or any(
        stubs.BEGIN in (folder / name).read_text(errors="replace") for name in item.files if (folder / name).is_file())
    if reference:
        raise ValueError(f"refusing to reset {shown(folder)}: it holds the reference (solution regions) the stubs "
                         f"are generated from; reset works on exercises/ or on a folder laid out like it")
    if not (folder / "__init__.py").is_file():
        raise ValueError(f"{folder} has no __init__.py: expected a folder laid out like exercises/")
    if not item.files:
        raise ValueError(f"lesson {item.id} ({item.title}) has no files of its own to reset")
    generated = stubs.generate()
    backups, backup_dir = [], None
    for name in item.files:
        target = folder / name
        if target.is_file() and target.read_bytes() != generated[name].encode():
            if backup_dir is None:
                backup_dir = _new_backup_dir(Path(backup_root))
            shutil.copy2(target, backup_dir / name)
            backups.append(backup_dir / name)
        write_atomic(target, generated[name])
    return backups


def _new_backup_dir(root):
    """A fresh backup_root/<timestamp> folder (with a -2, -3... suffix when two resets share a second)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ValueError(f"cannot create a backup folder in {root}: too many backups named {stamp}")


def _snapshot(folder):
    """{relative path: (mtime_ns, size)} of the .py files under folder; hidden files (editor temporaries) skipped."""
    result = {}
    for path in folder.rglob("*.py"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        try:
            stat = path.stat()
        except OSError:  # deleted between the listing and the stat: the next poll sees it gone
            continue
        result[str(relative)] = (stat.st_mtime_ns, stat.st_size)
    return result


def _read_lines(stream, events):
    """Post one event per line read from stream, then None at its end (a daemon thread: reading blocks)."""
    try:
        for _ in iter(stream.readline, ""):
            events.put("enter")
    except (OSError, ValueError):  # no usable stdin (closed, or captured by a test runner): keep watching files
        return
    events.put(None)


def watch(run, folder=ROOT / "exercises", interval=1.0, stdin=sys.stdin, max_runs=None, out=None):
    """Call run() now, then again whenever a .py file of folder is saved or Enter is pressed on stdin.

    Saves are found by polling modification times and sizes every interval seconds (no dependency, and it
    works where file events do not); Enter is the manual fallback. Ctrl-C or the end of stdin stops it, as
    does max_runs calls of run(). stdin=None listens to files only. An exception in run() is printed.
    """
    folder = _folder(folder)
    out = sys.stdout if out is None else out
    events = queue.Queue()
    if stdin is not None:
        threading.Thread(target=_read_lines, args=(stdin, events), daemon=True).start()
    runs = 0
    try:
        while True:
            seen = _snapshot(folder)  # taken before run(), so a save during the run triggers one more
            try:
                run()
            except Exception:  # the watcher outlives a failing run: the next save may fix it
                traceback.print_exc(file=out)
            runs += 1
            if max_runs is not None and runs >= max_runs:
                return
            print(f"\nWatching {shown(folder)}/: save a .py file or press Enter to run again; Ctrl-C to stop.",
                  file=out, flush=True)
            while True:
                try:
                    event = events.get(timeout=interval)
                except queue.Empty:
                    if _snapshot(folder) != seen:
                        break
                    continue
                if event is None:
                    return
                break
    except KeyboardInterrupt:
        print(file=out, flush=True)


def exercise_at(filename, line):
    """(lesson id, Exercise) whose function or method holds line of filename, or None.

    The file is matched by name against the manifest's exercise files; the enclosing `def` (and its class)
    gives the symbol, e.g. "LayerNorm.backward"."""
    name = Path(str(filename)).name
    candidates = {e.symbol: (item.id, e) for item in lessons() for e in item.exercises if e.file == name}
    if not candidates:
        return None
    try:
        tree = ast.parse(Path(str(filename)).read_text(errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return None
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for child in node.body:
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                        child.lineno <= line <= (child.end_lineno or child.lineno):
                    best = f"{node.name}.{child.name}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and best is None and \
                node.lineno <= line <= (node.end_lineno or node.lineno) and node.col_offset == 0:
            best = node.name
    return candidates.get(best)


def pointer_for(filename, line):
    """'raised in LayerNorm.backward: reread lessons/03_layers.md, section "LayerNorm backward"', or ''."""
    found = exercise_at(filename, line)
    if found is None:
        return ""
    lesson_id, exercise = found
    return f"raised in {exercise.symbol}: {reread(lesson_id, exercise.section)}"
