"""Generate exercises/ from solutions/: each solution region becomes a stub that raises NotImplementedError.

A region is the lines between '# BEGIN SOLUTION' and '# END SOLUTION' inside a function listed as an
exercise in manifest.toml. A region between '# BEGIN WORKED EXAMPLE' and '# END WORKED EXAMPLE' is kept
complete, under a comment that says so. Everything else (signatures, docstrings, validation) is kept as it is.

    python -m kata.stubs [--check]
"""

import argparse
import ast
import sys
from pathlib import Path

from .manifest import ROOT, lessons, reread

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
WORKED_BEGIN, WORKED_END = "# BEGIN WORKED EXAMPLE", "# END WORKED EXAMPLE"
HEADER = "# Generated from solutions/ by `python -m kata.stubs`: your work goes where NotImplementedError is raised.\n"


def exercise_index():
    """{(file, symbol): (lesson id, section, worked)} from the manifest."""
    return {(e.file, e.symbol): (item.id, e.section, e.worked) for item in lessons() for e in item.exercises}


def enclosing_symbols(source):
    """{line number: 'Class.method' or 'function'} of the innermost function around each line."""
    owner = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for line in range(child.lineno, child.end_lineno + 1):
                    owner.setdefault(line, f"{prefix}{child.name}")  # outer first; nested defs keep it
                # nested functions belong to the exercise of their outer function

    visit(ast.parse(source), "")
    return owner


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
            out.append(f'{indent}# EXERCISE lesson{lesson_id} "{section}": write {symbol} here\n')
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


def generate(solutions=ROOT / "solutions"):
    """{file name: stub text} for every Python file of solutions/."""
    index = exercise_index()
    result = {}
    for path in sorted(solutions.glob("*.py")):
        text = path.read_text()
        regions = BEGIN in text or WORKED_BEGIN in text
        result[path.name] = HEADER + stub_source(text, path.name, index) if regions else text
    return result


def stale_files(target=ROOT / "exercises"):
    """Files of target that differ from what generate() would write (missing ones included)."""
    expected = generate()
    present = {p.name for p in target.glob("*.py")}
    return sorted(name for name, text in expected.items()
                  if name not in present or (target / name).read_text() != text) + sorted(present - set(expected))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether exercises/ is up to date")
    parser.add_argument("--out", default=str(ROOT / "exercises"))
    args = parser.parse_args(argv)
    target = Path(args.out)
    if args.check:
        stale = stale_files(target)
        print("exercises/ is up to date" if not stale else f"out of date: {', '.join(stale)}")
        return 1 if stale else 0
    target.mkdir(exist_ok=True)
    for name, text in generate().items():
        (target / name).write_text(text)
    print(f"wrote {len(generate())} files to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
