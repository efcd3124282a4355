"""Write exercises/ from solutions/: each solution region becomes a stub (kata/course/exercises.py says how).

    python -m kata.authoring.stubs [--check]
"""

import argparse
import sys
from pathlib import Path

from ..course.exercises import generate
from ..course.repository import STUDENT


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
    parser.add_argument("--out", default=str(STUDENT))
    args = parser.parse_args(argv)
    target = Path(args.out)
    if args.check:
        stale = stale_files(target)
        print("exercises/ is up to date" if not stale else f"out of date: {', '.join(stale)}")
        return 1 if stale else 0
    target.mkdir(exist_ok=True)
    for name, text in generate().items():
        (target / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(generate())} files to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
