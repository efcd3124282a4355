"""The grader's instructor options and commands: grader.py registers them only where kata/instructor/ exists, so
the students' edition, which leaves this package out, has none of them."""

import argparse

from ..grading import batch as batch_tools
from ..grading import gradescope
from ..grading.settings import DEFAULT_SECONDS, seconds, variant
from . import release, similarity

USAGE = [
    "    python grader.py --impl solutions --gradescope results.json --isolated",
    "    python grader.py batch submissions/ --out grades/",
    "    python grader.py package-gradescope --out autograder.zip --visibility after_due_date",
    "    python grader.py similarity submissions/ --out similarity.html",
    "    python grader.py release --out ../kata-edition --hint-levels 2",
    "    python grader.py --impl alice.zip --variant 7    the public tests, then a hidden variant drawn from seed 7",
]
VARIANT_HELP = ("grade every lesson again on inputs drawn afresh from SEED, with expected values from the reference, "
                "and report both scores (default: the public tests only)")


def add_grading_options(parser, value):
    """The options of grading itself that need the reference; value(default) as grader.py's _common gives it."""
    parser.add_argument("--isolated", action="store_true", default=value(False),
                        help="grade each lesson with the reference code for every other lesson (default: no)")
    parser.add_argument("--variant", type=variant, default=value(None), metavar="SEED", help=VARIANT_HELP)


def add_commands(main, commands):
    """The main parser's instructor options and the instructor's subcommands."""
    main.add_argument("--gradescope", metavar="FILE", help="write Gradescope's results.json (default: not written)")
    batch = commands.add_parser("batch", help="grade every submission (sub-folder or zip) of a folder")
    batch.add_argument("folder", metavar="DIR", help="a folder holding one sub-folder or zip per student")
    batch.add_argument("--out", default="grades", metavar="DIR", help="where grades.csv and one JSON per student go "
                       "(default %(default)s)")
    batch.add_argument("--workers", type=int, metavar="N", help="submissions graded at the same time (default "
                       f"{batch_tools.DEFAULT_WORKERS})")
    for flag, options in (
            ("--isolated", {"action": "store_true", "help": "grade each lesson with the reference for every other "
                                                            "lesson (default: no)"}),
            ("--lesson", {"action": "append", "metavar": "ID", "help": "grade only this lesson (repeatable or comma "
                                                                        "list; default: every lesson)"}),
            ("--timeout", {"type": seconds, "metavar": "SECONDS", "help": "time allowed per lesson (default "
                                                                          f"{DEFAULT_SECONDS:g})"}),
            ("--allow-unconfined", {"action": "store_true", "help": "grade even where the sandbox cannot confine "
                                                                    "the submissions' code (code you trust only; "
                                                                    "default: refused)"}),
            ("--variant", {"type": variant, "metavar": "SEED", "help": VARIANT_HELP})):
        batch.add_argument(flag, default=argparse.SUPPRESS, **options)
    package = commands.add_parser("package-gradescope", help="build the autograder zip for Gradescope")
    # a bad option is one line, like a bad setting: scripts build the autograder
    package.error = lambda message: package.exit(2, f"{package.prog}: error: {message}\n")
    package.add_argument("--out", default="autograder.zip", metavar="FILE", help="the zip to write (default "
                         "%(default)s)")
    package.add_argument("--lesson", action="append", metavar="ID",
                         help="grade only these lessons on Gradescope (repeatable or comma list; default: all)")
    package.add_argument("--isolated", action="store_true",
                         help="grade each lesson with the reference for every other lesson (default: no)")
    package.add_argument("--timeout", type=seconds, metavar="SECONDS",
                         help=f"time allowed per lesson (default {DEFAULT_SECONDS:g})")
    package.add_argument("--variant", type=variant, metavar="SEED",
                         help="grade every lesson again on a hidden variant drawn from SEED, one more entry per lesson "
                              "shown to students after the due date (default: the public tests only)")
    visibilities = ", ".join(gradescope.VISIBILITIES)
    package.add_argument("--visibility", choices=gradescope.VISIBILITIES, default=gradescope.VISIBILITY,
                         metavar="WHEN", help=f"when students see each lesson's result and output: {visibilities} "
                                              f"(default {gradescope.VISIBILITY})")
    package.add_argument("--stdout-visibility", choices=gradescope.VISIBILITIES,
                         default=gradescope.STDOUT_VISIBILITY, metavar="WHEN",
                         help=f"when students see the autograder's stdout, where the grader's diagnostics go: "
                              f"{visibilities} (default {gradescope.STDOUT_VISIBILITY}: instructors only)")
    similarity.add_command(commands)
    release.add_command(commands)


def outputs(args):
    """(option, path, is a folder, kind) of every file the instructor's options and commands write."""
    found = [("--gradescope", getattr(args, "gradescope", None), False, "json")]
    if args.command in ("batch", "package-gradescope"):
        found.append(("--out", args.out, args.command == "batch", "zip"))
    if args.command == similarity.COMMAND:
        found.append(("--out", args.out, False, "html"))
    if args.command == release.COMMAND:
        found.append(("--out", args.out, True, "empty"))
    return found


def write_outputs(args, result):
    """After a grading: what the instructor's options ask to write besides the report."""
    if args.gradescope:
        gradescope.write_results(result, args.gradescope)
        print(f"wrote {args.gradescope}")


def run_batch(args):
    rows = batch_tools.batch(args.folder, args.out, isolated=args.isolated, workers=args.workers,
                             lesson_ids=args.lesson, timeout=args.timeout, allow_unconfined=args.allow_unconfined,
                             variant=args.variant)
    return 0 if rows is not None else 1


def run_package(args):
    path = gradescope.package(args.out, lesson_ids=args.lesson, isolated=args.isolated, timeout=args.timeout,
                              visibility=args.visibility, stdout_visibility=args.stdout_visibility,
                              variant=args.variant)
    print(f"wrote {path}")
    return 0


COMMANDS = {"batch": run_batch, "package-gradescope": run_package, similarity.COMMAND: similarity.run_command,
            release.COMMAND: release.run_command}
