"""Where an error comes from, as fields (file, line, function): the one reading of tracebacks, of a failed import
and of a faulthandler dump for every tool."""

import re
import traceback
from dataclasses import dataclass
from pathlib import Path

DUMP_FRAME = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')  # a frame of a faulthandler dump


@dataclass(frozen=True)
class Place:
    file: str  # a path, or a file name inside a folder the reader knows
    line: int | None = None
    function: str | None = None

    def __str__(self):
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def to_json(self):
        return [self.file, self.line, self.function]

    @classmethod
    def from_json(cls, data):
        """A Place from to_json()'s list, or None when data is not one (the other side may send anything)."""
        if not (isinstance(data, list) and len(data) == 3 and isinstance(data[0], str)
                and (data[1] is None or (isinstance(data[1], int) and not isinstance(data[1], bool)))
                and (data[2] is None or isinstance(data[2], str))):
            return None
        return cls(data[0][:1000], data[1], data[2] and data[2][:200])


def running(place):
    """How a timeout's message names the place it was stopped at: ': it was running FILE line N (function)', or ''
    when it is not known."""
    return f": it was running {place.file} line {place.line} ({place.function})" if place is not None else ""


def inside(path, folder):
    """Whether the file at path lies directly in folder."""
    try:
        return Path(path).resolve().parent == Path(folder).resolve()
    except (OSError, ValueError):
        return False


def frames(error):
    """Every Place of an exception's traceback, innermost last; a SyntaxError's own location comes last."""
    found = [Place(f.filename, f.lineno, f.name) for f in traceback.extract_tb(error.__traceback__)]
    if isinstance(error, SyntaxError) and error.filename:
        found.append(Place(error.filename, error.lineno))
    return found


def raised_at(error, folder=None, skip=None):
    """The innermost Place of error (inside folder, if given; not under the folder skip, if given), or None."""
    for place in reversed(frames(error)):
        if folder is not None and not inside(place.file, folder):
            continue
        if skip is not None and Path(place.file).resolve().is_relative_to(Path(skip).resolve()):
            continue
        return place
    return None


def trail(error, skip=None, limit=16):
    """The frames of error's traceback (not under the folder skip, if given) where the file changes, innermost
    last, at most the innermost limit: the innermost frame of each file it went through, from outside in, so that
    the frame of an exercise that called a helper module is kept however deep the helper went."""
    found = []
    for place in frames(error):
        if skip is not None and Path(place.file).resolve().is_relative_to(Path(skip).resolve()):
            continue
        if found and found[-1].file == place.file:
            found[-1] = place
        else:
            found.append(place)
    return found[-limit:]


def in_dump(text, folder):
    """The innermost Place inside folder of a faulthandler dump (which lists the innermost frame first), or None."""
    for path, line, function in DUMP_FRAME.findall(text):
        if inside(path, folder):
            return Place(path, int(line), function)
    return None


def import_failure(error, folder):
    """What a failed import of the implementation in folder says, as plain data (computed where it failed, which
    may be a sandbox that cannot see the reference): {"inside": [[file name, line], ...] frames in folder, innermost
    last; "missing": [file name, name] when a file of folder lacked an imported name, else None; "error": text}."""
    lacking = None
    missing = re.match(r"cannot import name '(\w+)'", str(error))
    if isinstance(error, ImportError) and missing and error.path and inside(error.path, folder):
        lacking = [Path(error.path).name, missing[1]]
    return {"inside": [[Path(p.file).name, p.line] for p in frames(error) if inside(p.file, folder)],
            "missing": lacking, "error": f"{type(error).__name__}: {error}"}


def plain_import_failure(verdict):
    """Whether a report of import_failure's shape that came from another process is plain data of that shape."""
    if not isinstance(verdict, dict) or not isinstance(verdict.get("error"), str):
        return False
    found, missing = verdict.get("inside"), verdict.get("missing")

    def frame(item):
        return isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and "/" not in item[0] \
            and (item[1] is None or isinstance(item[1], int))
    return isinstance(found, list) and all(frame(item) for item in found) and \
        (missing is None or (isinstance(missing, list) and len(missing) == 2
                             and all(isinstance(x, str) and "/" not in x for x in missing)))
