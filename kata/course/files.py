"""Files written whole or not at all: a reader (a grade book, Gradescope, a second run) never sees half a file;
and Python source parsed safely from any thread."""

import ast
import json
import os
import threading
import uuid
from pathlib import Path

from .repository import ROOT

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


# what no output option may write into: the kata's sources and the student's work (ROOT-relative); and the files of
# checkpoints/ that exist (the shipped models)
KEPT_FOLDERS = ("exercises", "solutions", "notebooks", "lessons", "tests", "kata", "meta", "benchmarks", ".git",
                ".kata")
KEPT_EXISTING = ("checkpoints",)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip (an .npz is a zip)


def _holds_json(path):
    """Whether the file at path is empty or JSON, read whole (a cut prefix of a large JSON file is no JSON)."""
    data = Path(path).read_bytes()
    if not data.strip():
        return True
    try:
        json.loads(data)
    except ValueError:  # (UnicodeDecodeError included)
        return False
    return True


def _holds_html(path):
    """Whether the file at path is empty or starts as an HTML page does (<!DOCTYPE html> or <html), spaces and a
    byte-order mark aside."""
    with open(path, "rb") as stream:
        start = stream.read(1024).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return not start or start.startswith((b"<!doctype html", b"<html"))


def _holds_zip(path):
    with open(path, "rb") as stream:
        return stream.read(4) in ZIP_MAGIC


KINDS = {  # an existing file an option may replace: one that holds what the option writes
    "json": ("a JSON file", _holds_json),
    "zip": ("a zip file", _holds_zip),
    "checkpoint": ("a checkpoint (.npz)", _holds_zip),
    "html": ("an HTML page", _holds_html),
    "empty": ("an empty folder", lambda path: not any(Path(path).iterdir())),  # a folder written whole (a release)
}


def _kept_reason(path, folder):
    """Why path may not be written by an output option, or None."""
    absolute = Path(os.path.realpath(path))
    try:
        parts = absolute.relative_to(ROOT).parts
    except ValueError:
        return None
    if not parts:
        return "it is the repository itself" if folder else None
    if parts[0] in KEPT_FOLDERS:
        return f"it is inside {parts[0]}/, which holds the kata's files or your work"
    if len(parts) == 1 and not folder and absolute.exists() and absolute.suffix in (".py", ".md", ".toml", ".lock"):
        return "it is one of the kata's own files"
    if parts[0] in KEPT_EXISTING and absolute.exists() and not folder:
        return f"it is a model shipped in {parts[0]}/"
    return None


def check_output(path, option, folder=False, kind=None, kata_folder=False):
    """Path(path) when a tool can write it; else OutputPathError naming option, the path and why.

    path is a file the tool writes whole (folder=False) or a folder it writes files into (folder=True). Checked:
    it is not a folder (a file), or not a file (a folder); the folders missing on its way can be created; and a
    file can be created in the folder it goes into, or in the nearest existing folder above it (a temporary file,
    created and removed at once). Nothing else is created, and an existing output is left as it is, so every tool
    checks its outputs before any work starts and writes them only once the work is done.

    Refused too: an empty path; a path inside the kata's folders (exercises/, solutions/, notebooks/, lessons/,
    tests/, kata/, .kata/ ...), one of its own files, or a shipped model of checkpoints/; and, with kind ("json",
    "zip", "checkpoint", "html"), an existing file that does not hold that kind of output (a student's code, say);
    with folder and kind "empty", an existing folder that holds anything."""
    if not str(path).strip():
        raise OutputPathError(f"{option}: the path is empty")
    path = Path(path).expanduser()
    where = f"{option} {path}"
    kept = None if kata_folder else _kept_reason(path, folder)  # (kata_folder: a generator writing its own folder)
    if kept:
        raise OutputPathError(f"{where}: {kept}; nothing is written there: choose a path outside it")
    if kind and not folder and path.is_file():
        name, holds = KINDS[kind]
        try:
            held = holds(path)
        except OSError as error:
            raise OutputPathError(f"{where}: cannot read the file already there: {error.strerror or error}") from None
        if not held:
            raise OutputPathError(f"{where}: a file is already there and it is not {name}: it could be your work, "
                                  f"so it is not written over; choose another path or remove it first")
    if folder and path.exists() and not path.is_dir():
        raise OutputPathError(f"{where}: it is a file, and a folder is expected here")
    if kind and folder and path.is_dir():
        name, holds = KINDS[kind]
        try:
            held = holds(path)
        except OSError as error:
            raise OutputPathError(f"{where}: cannot read the folder already there: {error.strerror or error}") from None
        if not held:
            raise OutputPathError(f"{where}: a folder is already there and it is not {name}: nothing in it is written "
                                  f"over; choose another path or empty it first")
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
