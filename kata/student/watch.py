"""Watch: run the grader again whenever a .py file of the student's folder is saved, or when Enter is pressed."""

import queue
import sys
import threading
import traceback

from ..course.repository import STUDENT, existing_folder, shown


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


def watch(run, folder=STUDENT, interval=1.0, stdin=sys.stdin, max_runs=None, out=None):
    """Call run() now, then again whenever a .py file of folder is saved or Enter is pressed on stdin.

    Saves are found by polling modification times and sizes every interval seconds (no dependency, and it
    works where file events do not); Enter is the manual fallback. Ctrl-C or the end of stdin stops it, as
    does max_runs calls of run(). stdin=None listens to files only. An exception in run() is printed.
    Returns the KeyboardInterrupt that stopped it (Ctrl-C, during a run or between two), or None.
    """
    folder = existing_folder(folder)
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
                return None
            print(f"\nWatching {shown(folder)}/: save a .py file or press Enter to run again; Ctrl-C to stop.",
                  file=out, flush=True)
            while True:
                try:
                    event = events.get(timeout=interval)
                except queue.Empty:
                    if _snapshot(folder) != seen:
                        break
                    continue
                if event is None:  # Ctrl-D (Ctrl-Z Enter on Windows), or a closed input
                    print(f"\nEnd of input: stopped watching {shown(folder)}/.", file=out, flush=True)
                    return None
                break
    except KeyboardInterrupt as stop:
        return stop
    return None
