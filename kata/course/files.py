"""Files written whole or not at all: a reader (a grade book, Gradescope, a second run) never sees half a file;
and Python source parsed safely from any thread."""

import ast
import json
import os
import threading
import uuid
from pathlib import Path

_PARSING = threading.Lock()


def parse_python(source, filename="<unknown>"):
    """ast.parse(source), one thread at a time: CPython 3.11 keeps the parser's recursion depth in state that
    threads share, and two threads parsing at once can fail with SystemError ("AST constructor recursion depth
    mismatch"; seen grading two submissions at once, as batch does)."""
    with _PARSING:
        return ast.parse(source, filename)


def write_atomic(path, data):
    """Write data (str as UTF-8, or bytes) to path through a temporary file in the same folder, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    # 0o666 as open() uses: the umask applies, so a student's file keeps the usual permissions; O_BINARY (Windows
    # only): without it the descriptor is in text mode there, and every \n would be written as \r\n
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        os.replace(temporary, path)
    except BaseException:  # an interrupted write leaves no temporary file behind
        temporary.unlink(missing_ok=True)
        raise


def write_json(path, data, indent=2, **options):
    """Write data as indented JSON with a final newline, atomically."""
    write_atomic(path, json.dumps(data, indent=indent, **options) + "\n")


class OutputPathError(ValueError):
    """An output path a tool cannot write; the message names the option, the path and why."""


def check_output(path, option, folder=False):
    """Path(path) when a tool can write it; else OutputPathError naming option, the path and why.

    path is a file the tool writes whole (folder=False) or a folder it writes files into (folder=True). Checked:
    it is not a folder (a file), or not a file (a folder); the folders missing on its way can be created; and a
    file can be created in the folder it goes into, or in the nearest existing folder above it (a temporary file,
    created and removed at once). Nothing else is created, and an existing output is left as it is, so every tool
    checks its outputs before any work starts and writes them only once the work is done."""
    path = Path(path).expanduser()
    where = f"{option} {path}"
    if folder and path.exists() and not path.is_dir():
        raise OutputPathError(f"{where}: it is a file, and a folder is expected here")
    if not folder and path.is_dir():
        raise OutputPathError(f"{where}: it is a folder, and a file name is expected here")
    target = path.absolute() if folder else path.absolute().parent
    existing = target
    while not existing.exists() and existing != existing.parent:  # the folders to create go into this one
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"{where}: {existing} is a file, not a folder")
    created = "" if existing == target else f" (to create {target} in it)"
    probe = existing / f".kata-probe-{uuid.uuid4().hex[:12]}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as error:
        raise OutputPathError(f"{where}: cannot write in {existing}{created}: {error.strerror or error}") from None
    return path
