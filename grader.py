"""Grade the transformer kata, lesson by lesson (CONTRACT.md section 5).

    python grader.py                         your progress and the next step
    python grader.py --lesson 02             one lesson (repeat --lesson, or 02,03)
    python grader.py --impl alice.zip        one submission: a folder laid out like exercises/, or a zip of one
    python grader.py --json out.json --timeout 300
    python grader.py status | hint 02 | watch | reset 02

Exit status: 0 once grading ran (a low score is not an error), 2 for a bad command or an unusable submission.
"""

import argparse
import sys

try:  # a Ctrl-C while the grader starts (importing takes a moment) ends as any other: one line, 130
    from kata.course import files
    from kata.course.console import printable_output
    from kata.course.manifest import lesson, lesson_ids
    from kata.course.repository import INSTRUCTOR, NO_REFERENCE, has_reference, named_implementations, shown
    from kata.grading.grade import grade
    from kata.grading.interrupted import GradingInterrupted
    from kata.grading.report import is_student, report, student_folder, table
    from kata.grading.settings import DEFAULT_SECONDS, seconds
    from kata.grading.submission import SubmissionError
    from kata.sandbox import NotContained
    from kata.student import hints, reset, watch
    if INSTRUCTOR:  # the instructor's kata; the students' edition leaves kata/instructor/ out
        from kata.instructor import commands as instructor
    else:
        instructor = None
except KeyboardInterrupt:
    print("\nInterrupted: nothing was being graded", file=sys.stderr)
    sys.exit(130)


def _common(parser, defaults, every="every lesson"):
    """--impl, --lesson, --timeout, --sandbox (and the instructor's options); a subcommand's copies default to
    SUPPRESS so they never overwrite what was given before the subcommand's name. every: what is graded without
    --lesson."""
    value = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    parser.add_argument("--impl", default=value("exercises"),
                        help=f"{named_implementations()} (default), a folder laid out like exercises/, or a .zip of "
                             "one")
    parser.add_argument("--lesson", action="append", default=value(None), metavar="ID",
                        help=f"grade only this lesson (repeat it, or give a comma list: 02,03; default: {every})")
    parser.add_argument("--timeout", type=seconds, default=value(DEFAULT_SECONDS), metavar="SECONDS",
                        help=f"time allowed per lesson (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--sandbox", action=argparse.BooleanOptionalAction, default=value(None),
                        help="run the submission's code only in sandboxed child processes and take only the kata's "
                             "files from it (default: yes for a folder or zip, no for solutions and exercises)")
    parser.add_argument("--allow-unconfined", action="store_true", default=value(False),
                        help="grade even where the sandbox cannot confine the submission's code on this machine (code "
                             "you trust only; by default such a grading is refused and says how to fix it)")
    if instructor:
        instructor.add_grading_options(parser, value)
    else:
        parser.set_defaults(**{name: value(default) for name, default in INSTRUCTOR_DEFAULTS.items()})


INSTRUCTOR_DEFAULTS = {"isolated": False, "variant": None}  # what grading takes of the instructor's options, in the students' edition


def parser():
    main = argparse.ArgumentParser(prog="python grader.py", description=__doc__.splitlines()[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n".join(__doc__.splitlines()[2:-2] + (instructor.USAGE if instructor
                                                                                    else []) + [""] +
                                                     __doc__.splitlines()[-2:]))
    _common(main, True)
    main.add_argument("--json", metavar="FILE", help="write the result as JSON (CONTRACT.md section 5; default: "
                      "not written)")
    commands = main.add_subparsers(dest="command", metavar="[COMMAND]")
    _common(commands.add_parser("status", help="the progress table only"), False)
    hint = commands.add_parser("hint", help="the next hint for a lesson's exercise, one level at a time")
    hint.add_argument("lesson_id", metavar="LESSON", help="a lesson id, e.g. 02")
    hint.add_argument("symbol", nargs="?", metavar="SYMBOL", help="an exercise, e.g. LayerNorm.forward (default: the "
                      "lesson's first unfinished one, or the one its first failing test points to)")
    _common(commands.add_parser("watch", help="grade the current lesson again at every save (or Enter)"), False,
            every="every lesson the first time, then the current one")
    reset = commands.add_parser("reset", help="restore a lesson's stubs, keeping a backup of your version")
    reset.add_argument("lesson_id", metavar="LESSON", help="a lesson id, e.g. 02")
    if instructor:
        instructor.add_commands(main, commands)
    return main


def check_outputs(args):
    """Every file and folder the command will write can be written, before any grading (files.check_output
    raises OutputPathError, a ValueError, naming the option, the path and why)."""
    outputs = [("--json", args.json, False, "json")] + (instructor.outputs(args) if instructor else [])
    for option, path, folder, kind in outputs:
        if path is not None:  # (an empty path is refused, not ignored)
            files.check_output(path, option, folder=folder, kind=kind)


# ---------------------------------------------------------------- commands

def _grade(args):
    print(f"Grading {args.impl}...", file=sys.stderr, flush=True)
    return grade(args.impl, args.lesson, isolated=args.isolated, timeout=args.timeout, sandbox=args.sandbox,
                 allow_unconfined=args.allow_unconfined, variant=args.variant)


def run_grade(args):
    result = _grade(args)
    print(report(result, args.impl, is_student(args.impl)))
    if args.json:
        files.write_json(args.json, result.to_json())
        print(f"wrote {args.json}")
    if instructor:
        instructor.write_outputs(args, result)
    return 0


def run_status(args):
    result = _grade(args)
    print(table(result))
    return 0


def run_watch(args):
    folder = student_folder(args.impl)
    if folder is None:
        raise ValueError(f"watch needs a folder to watch: {args.impl} is not one")
    chosen, current = args.lesson, {"lesson": None}

    def run():
        # without --lesson: the first run (and the one after a lesson passes) grades everything to find the
        # current lesson, the next ones only that lesson
        args.lesson = chosen or ([current["lesson"]] if current["lesson"] else None)
        result = _grade(args)
        print(report(result, args.impl, True))
        current["lesson"] = result.current.id if result.current else None

    stop = watch.watch(run, folder)
    if stop is None:
        return 0
    print(f"\n{_interrupted(stop)}; stopped watching {shown(folder)}/", file=sys.stderr, flush=True)
    return 130


def run_hint(args):
    def check(lesson_id):  # asked only when no stub of the lesson is left: does it pass already?
        print(f"No stub of lesson {lesson_id} is left in exercises/: grading it first...", file=sys.stderr, flush=True)
        return grade("exercises", [lesson_id]).lessons[0]

    print(hints.next_hint(args.lesson_id, args.symbol, check=check))
    return 0


def run_reset(args):
    backups, item = reset.reset(args.lesson_id), lesson(args.lesson_id)
    kept = f"; your version is kept in {', '.join(shown(p) for p in backups)}" if backups else ""
    print(f"lesson {item.id}: {', '.join('exercises/' + f for f in item.files)} restored to the stubs{kept}")
    return 0


COMMANDS = {None: run_grade, "status": run_status, "watch": run_watch, "hint": run_hint, "reset": run_reset,
            **(instructor.COMMANDS if instructor else {})}


def main(argv=None):
    try:
        args = parser().parse_args(argv)
        if args.lesson:
            args.lesson = lesson_ids(args.lesson)
        if getattr(args, "impl", None) == "solutions" and not has_reference():
            raise ValueError(NO_REFERENCE)  # the students' edition: one line, before any work
        check_outputs(args)
        return COMMANDS[args.command](args)
    except (SubmissionError, NotContained, ValueError) as error:
        print(f"grader.py: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a folder made read-only: one line, never a traceback
        print(f"grader.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:  # Ctrl-C: every test process was killed; one line says what was interrupted
        print(f"\n{_interrupted(stop)}", file=sys.stderr, flush=True)
        return 130


def _interrupted(stop):
    """The line for a Ctrl-C: what grade() said was being graded, or what else was running."""
    if isinstance(stop, GradingInterrupted) or str(stop).startswith("Interrupted"):
        return str(stop)
    return "Interrupted: nothing was being graded"


if __name__ == "__main__":
    printable_output()
    sys.exit(main())
