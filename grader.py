"""Grade the transformer kata, lesson by lesson (SPEC section 5).

    python grader.py                         your progress and the next step
    python grader.py --lesson 02             one lesson (repeat --lesson, or 02,03)
    python grader.py --impl alice.zip        one submission: a folder laid out like exercises/, or a zip of one
    python grader.py --impl solutions --json out.json --gradescope results.json --timeout 300 --isolated
    python grader.py status | hint 02 | watch | reset 02
    python grader.py batch submissions/ --out grades/
    python grader.py package-gradescope --out autograder.zip

Exit status: 0 once grading ran (a low score is not an error), 2 for a bad command or an unusable submission.
"""

import argparse
import sys
import textwrap
from pathlib import Path

from kata.course import files
from kata.course.manifest import lesson, lessons
from kata.course.repository import ROOT, python, shown
from kata.course.exercises import unfinished
from kata.grading import batch as batch_tools, gradescope, grade as grading
from kata.student import hints, reset, watch


def _seconds(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _common(parser, defaults):
    """--impl, --lesson, --isolated, --timeout; a subcommand's copies default to SUPPRESS so they never
    overwrite what was given before the subcommand's name."""
    value = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    parser.add_argument("--impl", default=value("exercises"),
                        help="solutions, exercises (default), a folder laid out like exercises/, or a .zip of one")
    parser.add_argument("--lesson", action="append", default=value(None), metavar="ID",
                        help="grade only this lesson (repeat it, or give a comma list: 02,03)")
    parser.add_argument("--isolated", action="store_true", default=value(False),
                        help="grade each lesson with the reference code for every other lesson")
    parser.add_argument("--timeout", type=_seconds, default=value(grading.DEFAULT_TIMEOUT), metavar="SECONDS",
                        help=f"time allowed per lesson (default {grading.DEFAULT_TIMEOUT:g})")
    parser.add_argument("--sandbox", action=argparse.BooleanOptionalAction, default=value(None),
                        help="run the submission's code only in sandboxed child processes and take only the kata's "
                             "files from it (default: yes for a folder or zip, no for solutions and exercises)")


def parser():
    main = argparse.ArgumentParser(prog="python grader.py", description=__doc__.splitlines()[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n".join(__doc__.splitlines()[2:]))
    _common(main, True)
    main.add_argument("--json", metavar="FILE", help="write the result as JSON (SPEC section 5)")
    main.add_argument("--gradescope", metavar="FILE", help="write Gradescope's results.json")
    commands = main.add_subparsers(dest="command", metavar="[COMMAND]")
    _common(commands.add_parser("status", help="the progress table only"), False)
    hint = commands.add_parser("hint", help="the next hint for a lesson's exercise, one level at a time")
    hint.add_argument("lesson_id", metavar="LESSON")
    hint.add_argument("symbol", nargs="?", metavar="SYMBOL", help="an exercise, e.g. LayerNorm.forward")
    _common(commands.add_parser("watch", help="grade the current lesson again at every save (or Enter)"), False)
    reset = commands.add_parser("reset", help="restore a lesson's stubs, keeping a backup of your version")
    reset.add_argument("lesson_id", metavar="LESSON")
    batch = commands.add_parser("batch", help="grade every submission (sub-folder or zip) of a folder")
    batch.add_argument("folder", metavar="DIR")
    batch.add_argument("--out", default="grades", metavar="DIR", help="where grades.csv and one JSON per student go")
    batch.add_argument("--workers", type=int, metavar="N", help="submissions graded at the same time")
    for flag, options in (("--isolated", {"action": "store_true"}), ("--lesson", {"action": "append", "metavar": "ID"}),
                          ("--timeout", {"type": _seconds, "metavar": "SECONDS"})):
        batch.add_argument(flag, default=argparse.SUPPRESS, **options)
    package = commands.add_parser("package-gradescope", help="build the autograder zip for Gradescope")
    package.add_argument("--out", default="autograder.zip", metavar="FILE", help="the zip to write")
    package.add_argument("--lesson", action="append", metavar="ID",
                         help="grade only these lessons on Gradescope (repeatable or comma list)")
    package.add_argument("--isolated", action="store_true",
                         help="grade each lesson with the reference for every other lesson")
    return main


def _student_folder(impl):
    """The folder a student works in, or None when impl is not one (the reference, a zip)."""
    path = grading.impl_folder(impl).expanduser()
    if not path.is_dir() or path.resolve() == (ROOT / "solutions").resolve():
        return None
    return path


# ---------------------------------------------------------------- printing

def _points(entry):
    return f"{entry['score']:g}/{entry['max_score']:g}"


def table(result, details=False):
    """The progress table; with details, each unfinished lesson's first failure and note under its row."""
    entries = result["lessons"]
    width = max(len(e["title"]) for e in entries)
    rows = [f"lesson  {'title':<{width}}  {'tests':>7}  {'points':>11}"]
    for entry in entries:
        done = "  done" if entry["score"] == entry["max_score"] else ""
        tests = f"{entry['passed']}/{entry['total']}"
        rows.append(f"{entry['id']:<6}  {entry['title']:<{width}}  {tests:>7}  {_points(entry):>11}{done}")
        if details and entry["score"] < entry["max_score"]:
            failure = next(t for t in entry["tests"] if t["status"] != "passed")
            if not entry["note"].startswith("could not run"):  # else the note says it all
                rows.append(_indent(f"{failure['status']}: {failure['name']}\n  {failure['message']}", 8))
            if entry["note"]:
                rows.append(_indent(f"note: {entry['note']}", 8))
    passed, total = sum(e["passed"] for e in entries), sum(e["total"] for e in entries)
    rows.append(f"{'':<6}  {'total':<{width}}  {f'{passed}/{total}':>7}  {_points(result):>11}")
    return "\n".join(rows)


def _indent(text, spaces):
    lines = [textwrap.fill(line, 110, subsequent_indent="    ") for line in text.splitlines()]
    return textwrap.indent("\n".join(lines), " " * spaces)


def next_step(result, impl, folder):
    """What a student should do next: the first failure of the first unfinished lesson, and one step."""
    option = "" if impl == "exercises" else f" --impl {impl}"
    current = next((e for e in result["lessons"] if e["score"] < e["max_score"]), None)
    if current is None:
        if len(result["lessons"]) < len(lessons()):
            return f"Every lesson graded here passes. Run `{python()} grader.py{option}` to see what comes next."
        train = "\nNext: train your own model with `{python()} train.py`." if (ROOT / "train.py").exists() else ""
        return f"Every lesson passes: {_points(result)} points.{train}"
    failure = next(t for t in current["tests"] if t["status"] != "passed")
    lines = [f"Lesson {current['id']} ({current['title']}) is the next to finish. Its first failing test:",
             _indent(f"{failure['name']}\n{failure['message']}", 2), ""]
    todo = [stub for stub in unfinished(folder) if stub.lesson == current["id"]] if folder else []
    item = next(i for i in lessons() if i.id == current["id"])
    if current["note"].startswith("could not run"):
        lines.append(f"Next step: fix this first, {current['note'][len('could not run: '):]}")
    elif todo:
        _, symbol, file, line, section = todo[0]
        path = Path(folder) / Path(file).name
        marker = path.read_text(errors="replace").splitlines()[line - 1].strip() if path.is_file() else ""
        lines.append(f"Next step: open {shown(path)}, implement {symbol} (line {line}: `{marker}`),\n"
                     f"then read {item.text}, section \"{section}\".")
    elif current["note"]:
        lines.append(f"Next step: {current['note']}.")
    else:
        lines.append(f"Next step: lesson {current['id']} has no stub left, but {current['total'] - current['passed']} "
                     f"of its tests fail: fix the failure above (its message says what to reread).")
    lines.append(f"Check it with: {python()} grader.py --lesson {current['id']}{option}")
    return "\n".join(lines)


def report(result, impl, student):
    """The whole printout of a grading run."""
    head = f"{impl}{' (--isolated)' if result['isolated'] else ''}: {_points(result)} points " \
           f"(graded in {result['execution_time']:.1f} s)" + "".join(f"\nnote: {n}" for n in result.get("notes", []))
    if not student:
        return f"{head}\n\n{table(result, details=True)}"
    return f"{head}\n\n{table(result)}\n\n{next_step(result, impl, _student_folder(impl))}"


# ---------------------------------------------------------------- commands

def _grade(args):
    print(f"Grading {args.impl}...", file=sys.stderr, flush=True)
    return grading.grade(args.impl, args.lesson, isolated=args.isolated, timeout=args.timeout, sandbox=args.sandbox)


def _is_student(impl):
    folder = _student_folder(impl)
    return folder is not None and folder.resolve() == (ROOT / "exercises").resolve()


def run_grade(args):
    result = _grade(args)
    print(report(result, args.impl, _is_student(args.impl)))
    if args.json:
        files.write_json(args.json, result)
        print(f"wrote {args.json}")
    if args.gradescope:
        gradescope.write_results(result, args.gradescope)
        print(f"wrote {args.gradescope}")
    return 0


def run_status(args):
    result = _grade(args)
    print(table(result))
    return 0


def run_watch(args):
    folder = _student_folder(args.impl)
    if folder is None:
        raise ValueError(f"watch needs a folder to watch: {args.impl} is not one")
    chosen, current = args.lesson, {"lesson": None}

    def run():
        # without --lesson: the first run (and the one after a lesson passes) grades everything to find the
        # current lesson, the next ones only that lesson
        args.lesson = chosen or ([current["lesson"]] if current["lesson"] else None)
        result = _grade(args)
        print(report(result, args.impl, True))
        unfinished = [e["id"] for e in result["lessons"] if e["score"] < e["max_score"]]
        current["lesson"] = unfinished[0] if unfinished else None

    watch.watch(run, folder)
    return 0


def run_hint(args):
    print(hints.next_hint(args.lesson_id, args.symbol))
    return 0


def run_reset(args):
    backups, item = reset.reset(args.lesson_id), lesson(args.lesson_id)
    kept = f"; your version is kept in {', '.join(shown(p) for p in backups)}" if backups else ""
    print(f"lesson {item.id}: {', '.join('exercises/' + f for f in item.files)} restored to the stubs{kept}")
    return 0


def run_batch(args):
    rows = batch_tools.batch(args.folder, args.out, isolated=args.isolated, workers=args.workers,
                             lesson_ids=args.lesson, timeout=args.timeout)
    return 0 if rows is not None else 1


def run_package(args):
    print(f"wrote {gradescope.package(args.out, lesson_ids=args.lesson, isolated=args.isolated)}")
    return 0


COMMANDS = {None: run_grade, "status": run_status, "watch": run_watch, "hint": run_hint, "reset": run_reset,
            "batch": run_batch, "package-gradescope": run_package}


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if args.lesson:
            args.lesson = grading.lesson_ids_of(args.lesson)
        return COMMANDS[args.command](args)
    except (grading.SubmissionError, ValueError) as error:
        print(f"grader.py: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
