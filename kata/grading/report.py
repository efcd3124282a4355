"""The printed report of a grading: the progress table, and for a student the one next step."""

import textwrap
from pathlib import Path

from ..course.exercises import unfinished
from ..course.implementation import ImplementationError, folder_of
from ..course.manifest import lesson, lessons
from ..course.repository import REFERENCE, ROOT, STUDENT, python, shown


def student_folder(impl):
    """The folder a student works in, or None when impl is not one (the reference, a zip)."""
    try:
        path = folder_of(impl)
    except ImplementationError:
        return None
    return None if path == REFERENCE.resolve() else path


def is_student(impl):
    """Whether impl is the student's own exercises/ (their progress and next step are shown)."""
    return student_folder(impl) == STUDENT.resolve()


def _points(entry):
    return f"{entry.score:g}/{entry.max_score:g}"


def _indent(text, spaces):
    lines = [textwrap.fill(line, 110, subsequent_indent="    ") for line in text.splitlines()]
    return textwrap.indent("\n".join(lines), " " * spaces)


def table(result, details=False):
    """The progress table; with details, each unfinished lesson's first failure and note under its row (and, for a
    variant graded too, its column "variant SEED": tests passed and points on the variant's inputs)."""
    width = max(len(entry.title) for entry in result.lessons)
    varied = result.variant
    head = f"  {f'variant {varied.seed}':>19}" if varied else ""
    rows = [f"lesson  {'title':<{width}}  {'tests':>7}  {'points':>11}{head}"]

    def beside(entry):
        return f"  {f'{entry.passed}/{entry.total}':>7} {_points(entry):>11}" if entry is not None else ""

    for entry in result.lessons:
        done = "  done" if entry.done else ""
        rows.append(f"{entry.id:<6}  {entry.title:<{width}}  {f'{entry.passed}/{entry.total}':>7}  "
                    f"{_points(entry):>11}{beside(varied.lesson(entry.id)) if varied else ''}{done}")
        if details and not entry.done:
            failure = entry.first_failure
            if not entry.could_not_run:  # else the note says it all
                rows.append(_indent(f"{failure.status}: {failure.name}\n  {failure.message}", 8))
            if entry.note:
                rows.append(_indent(f"note: {entry.note}", 8))
        other = varied.lesson(entry.id) if varied else None
        if details and other is not None and not other.done and entry.done:  # what only the variant found
            failure = other.first_failure
            if not other.could_not_run:
                rows.append(_indent(f"variant {varied.seed}: {failure.status}: {failure.name}\n  {failure.message}", 8))
            if other.note:
                rows.append(_indent(f"variant {varied.seed}: note: {other.note}", 8))
    rows.append(f"{'':<6}  {'total':<{width}}  {f'{result.passed}/{result.total}':>7}  {_points(result):>11}"
                f"{beside(varied)}")
    return "\n".join(rows)


def next_step(result, impl, folder):
    """What a student should do next: the first failure of the first unfinished lesson, and one step."""
    option = "" if impl == "exercises" else f" --impl {impl}"
    current = result.current
    if current is None:
        if len(result.lessons) < len(lessons()):
            return f"Every lesson graded here passes. Run `{python()} grader.py{option}` to see what comes next."
        train = f"\nNext: train your own model with `{python()} train.py`." if (ROOT / "train.py").exists() else ""
        return f"Every lesson passes: {_points(result)} points.{train}"
    failure = current.first_failure
    lines = [f"Lesson {current.id} ({current.title}) is the next to finish. Its first failing test:",
             _indent(f"{failure.name}\n{failure.message}", 2), ""]
    todo = [stub for stub in unfinished(folder) if stub.lesson == current.id] if folder else []
    if current.could_not_run:
        problem = "; ".join(part for part in (current.could_not_run, current.dependency_note) if part)
        lines.append(f"Next step: fix this first, {problem}")
    elif todo:
        path = Path(folder) / todo[0].file
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        marker = text.splitlines()[todo[0].line - 1].strip() if text else ""
        lines.append(f"Next step: open {shown(path)}, implement {todo[0].symbol} (line {todo[0].line}: `{marker}`),\n"
                     f"then read {lesson(current.id).text}, section \"{todo[0].section}\".")
    elif current.note:
        lines.append(f"Next step: {current.note}.")
    else:
        lines.append(f"Next step: lesson {current.id} has no stub left, but {current.total - current.passed} "
                     f"of its tests fail: fix the failure above (its message says what to reread).")
    lines.append(f"Check it with: {python()} grader.py --lesson {current.id}{option}")
    return "\n".join(lines)


def report(result, impl, student):
    """The whole printout of a grading run."""
    varied = (f"; variant {result.variant.seed}: {_points(result.variant)} points, so "
              f"{round(result.score + result.variant.score, 2):g}"
              f"/{result.max_score + result.variant.max_score:g} in all"
              if result.variant else "")
    head = f"{impl}{' (--isolated)' if result.isolated else ''}: {_points(result)} points{varied} " \
           f"(graded in {result.execution_time:.1f} s)" + "".join(f"\nnote: {n}" for n in result.all_notes)
    if not student:
        return f"{head}\n\n{table(result, details=True)}"
    return f"{head}\n\n{table(result)}\n\n{next_step(result, impl, student_folder(impl))}"
