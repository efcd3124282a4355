"""The exercises: how a solution region of solutions/ becomes a stub of exercises/, and which stubs a folder still
has (a student's progress), and which exercise holds a line of code.

A region is the lines between '# BEGIN SOLUTION' and '# END SOLUTION' inside a function listed as an exercise in
manifest.toml; it becomes an `# EXERCISE lessonNN "Section": write Symbol here` line and a `raise
NotImplementedError(...)` naming the lesson and the section to read. A region between '# BEGIN WORKED EXAMPLE' and
'# END WORKED EXAMPLE' is kept complete, under a comment that says so. Everything else (signatures, docstrings,
validation) is kept as it is.
"""

import ast
import json
import re
from pathlib import Path
from typing import NamedTuple

from .files import parse_python
from .manifest import lessons, reread
from .repository import REFERENCE, SHIPPED_STUBS, STUDENT, existing_folder, has_reference

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
WORKED_BEGIN, WORKED_END = "# BEGIN WORKED EXAMPLE", "# END WORKED EXAMPLE"
HEADER = ("# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError "
          "is raised.\n")
# the line written above each stub's `raise NotImplementedError`, and how it is found again
MARKER_LINE = '{indent}# EXERCISE lesson{lesson} "{section}": write {symbol} here\n'
MARKER = re.compile(r'^(\s*)# EXERCISE lesson(\d+) "([^"]*)": write (\S+) here\s*$')


class Stub(NamedTuple):
    lesson: str
    symbol: str
    file: str  # its file name in the implementation folder
    line: int  # the line of its marker
    section: str


def exercise_index():
    """{(file, symbol): (lesson id, section, worked)} from the manifest."""
    return {(e.file, e.symbol): (item.id, e.section, e.worked) for item in lessons() for e in item.exercises}


def enclosing_symbols(source):
    """{line number: 'Class.method' or 'function'} of the outermost function around each line (nested functions
    belong to the exercise of their outer function)."""
    owner = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for line in range(child.lineno, child.end_lineno + 1):
                    owner.setdefault(line, f"{prefix}{child.name}")

    visit(parse_python(source), "")
    return owner


# ---------------------------------------------------------------- solutions -> stubs

def stub_source(source, file_name, index=None):
    """The stub version of one solution file."""
    index = exercise_index() if index is None else index
    owner = enclosing_symbols(source)
    lines, out, inside = source.splitlines(keepends=True), [], False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped in (BEGIN, WORKED_BEGIN):
            symbol = owner.get(number)
            if (file_name, symbol) not in index:
                raise ValueError(f"solutions/{file_name}:{number}: a region in {symbol!r}, which "
                                 f"manifest.toml does not list as an exercise of {file_name}")
            lesson_id, section, worked = index[(file_name, symbol)]
            if worked != (stripped == WORKED_BEGIN):
                raise ValueError(f"solutions/{file_name}:{number}: {symbol} is marked worked = {worked} in "
                                 f"manifest.toml but its region starts with {stripped!r}")
        if stripped == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            message = f"{symbol} (lesson {lesson_id}) is not implemented yet: {reread(lesson_id, section)}"
            out.append(MARKER_LINE.format(indent=indent, lesson=lesson_id, section=section, symbol=symbol))
            out.append(f"{indent}raise NotImplementedError({message!r})\n")
            inside = True
        elif stripped == END:
            if not inside:
                raise ValueError(f"solutions/{file_name}:{number}: {END} without {BEGIN}")
            inside = False
        elif stripped == WORKED_BEGIN:  # checked above
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# Worked example, given complete: read it, it shows how the others are done.\n")
        elif stripped == WORKED_END:
            pass
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"solutions/{file_name}: {BEGIN} without {END}")
    return "".join(out)


def generate(solutions=REFERENCE):
    """{file name: stub text} for every Python file of solutions/."""
    index = exercise_index()
    result = {}
    for path in sorted(Path(solutions).glob("*.py")):
        text = path.read_text(encoding="utf-8")
        regions = BEGIN in text or WORKED_BEGIN in text
        result[path.name] = HEADER + stub_source(text, path.name, index) if regions else text
    return result


def pristine():
    """{file name: stub text} of every file of an implementation folder, as shipped: generated from the reference
    where this checkout has it, else the copy the students' edition ships (kata/course/stubs.json, written by the
    release from the same generate())."""
    if has_reference():
        return generate()
    return json.loads(SHIPPED_STUBS.read_text(encoding="utf-8"))


def holds_reference(folder, names):
    """Whether any of the files names of folder still holds solution regions (it is the reference, or a copy)."""
    return any(BEGIN in (Path(folder) / name).read_text(errors="replace", encoding="utf-8")
               for name in names if (Path(folder) / name).is_file())


# ---------------------------------------------------------------- a student's progress

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


def unfinished(folder=STUDENT):
    """[Stub] of every stub of folder that is still to write, in manifest order.

    A stub is a marker line whose block still raises NotImplementedError; its line is the marker's. Markers the
    manifest does not know come last.
    """
    path = existing_folder(folder)
    order = {(item.id, e.symbol): n for n, (item, e) in
             enumerate((item, e) for item in lessons() for e in item.exercises)}
    found = []
    for file in sorted(path.glob("*.py")):
        lines = file.read_text(errors="replace", encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            match = MARKER.match(line)
            if match and _still_raises(lines, number, match[1]):
                found.append(Stub(match[2], match[4], file.name, number, match[3]))
    return sorted(found, key=lambda f: (order.get((f.lesson, f.symbol), len(order)), f.file, f.line))


def exercise_at(filename, line):
    """(lesson id, Exercise) whose function or method holds line of filename, or None.

    The file is matched by name against the manifest's exercise files; the enclosing `def` (and its class)
    gives the symbol, e.g. "LayerNorm.backward"."""
    name = Path(str(filename)).name
    candidates = {e.symbol: (item.id, e) for item in lessons() for e in item.exercises if e.file == name}
    if not candidates:
        return None
    try:
        owner = enclosing_symbols(Path(str(filename)).read_text(errors="replace", encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):  # code Python cannot parse points nowhere
        return None
    return candidates.get(owner.get(line))


def pointer_for(filename, line):
    """'raised in LayerNorm.backward: reread lessons/03_layers.md, section "LayerNorm backward"', or ''."""
    found = exercise_at(filename, line)
    if found is None:
        return ""
    lesson_id, exercise = found
    return f"raised in {exercise.symbol}: {reread(lesson_id, exercise.section)}"
