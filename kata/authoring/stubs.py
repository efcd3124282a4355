"""Write exercises/ from solutions/: each solution region becomes a stub (kata/course/exercises.py says how).

    python -m kata.authoring.stubs [--check]

A file of exercises/ that would change (a student's work, or an older stub) is first copied to .kata/backup/.
"""

import argparse
import sys
from pathlib import Path

from ..course.backups import Backups
from ..course.exercises import generate
from ..course.files import OutputPathError, check_output, write_atomic
from ..course.repository import STATE, STUDENT, shown


def stale_files(target=STUDENT):
    """Files of target that differ from what generate() would write (missing ones included)."""
    expected = generate()
    present = {p.name for p in Path(target).glob("*.py")}
    return sorted(name for name, text in expected.items()
                  if name not in present or (Path(target) / name).read_text(encoding="utf-8") != text) \
        + sorted(present - set(expected))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether exercises/ is up to date")
    parser.add_argument("--out", default=str(STUDENT), metavar="DIR",
                        help="the folder to write the stubs to (default: exercises/)")
    args = parser.parse_args(argv)
    target = Path(args.out)
    if not args.check:
        try:
            check_output(target, "--out", folder=True, kata_folder=True)
        except OutputPathError as error:
            print(f"python -m kata.authoring.stubs: {error}", file=sys.stderr)
            return 2
    if args.check:
        stale = stale_files(target)
        print("exercises/ is up to date" if not stale else f"out of date: {', '.join(stale)}")
        return 1 if stale else 0
    target.mkdir(exist_ok=True)
    keep, written = Backups(STATE / "backup"), 0
    for name, text in generate().items():
        path = target / name
        if path.is_file() and path.read_bytes() == text.encode():
            continue
        keep.save(path)  # a changed file may hold a student's work: nothing is written over without a copy
        write_atomic(path, text)
        written += 1
    print(f"wrote {written} of {len(generate())} files to {shown(target)}"
          + (f"; the {len(keep.saved)} replaced were copied to {shown(keep.folder)}/ first" if keep.saved else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
