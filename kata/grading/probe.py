"""Try to import an implementation, in a process of its own, and write where it failed:

    python -m kata.grading.probe FOLDER OUT SECONDS

OUT receives null when it imports, else import_failure()'s report as JSON; OUT.trace receives a faulthandler dump
when the import hangs past SECONDS or crashes Python (the grader reads where it was from it)."""

import faulthandler
import json
import os
import sys
from pathlib import Path

from ..course.implementation import ImplementationError, load
from ..course.places import import_failure


def main(folder, out, limit):
    folder = Path(folder).resolve()

    def no_exit(code=0):  # os._exit would leave no trace of where it was called
        raise SystemExit(f"os._exit({code}) called while importing")
    os._exit = no_exit
    with open(out + ".trace", "w", encoding="utf-8") as trace:
        faulthandler.enable(file=trace)  # a crash of Python itself still says where it was
        faulthandler.dump_traceback_later(limit, exit=True, file=trace)
        try:
            load(str(folder))
            verdict = None
        except ImplementationError as wrapped:
            verdict = import_failure(wrapped.__cause__, folder)
        faulthandler.cancel_dump_traceback_later()
    Path(out).write_text(json.dumps(verdict), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
