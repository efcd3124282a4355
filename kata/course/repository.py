"""Where things are in the repository, and how to name them in a message."""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "solutions"  # the reference implementation
STUDENT = ROOT / "exercises"  # the student's copy, generated from the reference
STATE = ROOT / ".kata"  # the tools' own state: hint levels, backups, caches
INSTRUCTOR = (ROOT / "kata" / "instructor").is_dir()  # False in the students' edition (no reference, no catalogue)
# the students' edition ships no reference: its stubs come from this copy, written by the release
SHIPPED_STUBS = ROOT / "kata" / "course" / "stubs.json"
NO_REFERENCE = ("this edition of the kata has no reference implementation (no solutions/): grade, train and play "
                "your own code (exercises/, the default) or a folder laid out like it")
NAMED = ("solutions", "exercises")  # implementations named rather than given by path
# what code under grading must never read: the reference, the expected values of the tests, the catalogue of wrong
# implementations (each quotes the reference), the history, and this checkout's own exercises/ and .kata/ (its
# backups): whoever grades may have filled them in (the child gets its own copy of the folder it serves)
PRIVATE = ("solutions", "tests", "meta", ".git", "exercises", ".kata")


def private_paths():
    """The PRIVATE folders that exist in this checkout; where .git is a file (a worktree of git's), the folders
    holding its history too: the worktree's own and the repository's, with every commit of solutions/ in it."""
    found = [ROOT / name for name in PRIVATE if (ROOT / name).exists()]
    dot_git = ROOT / ".git"
    try:
        if dot_git.is_file() and dot_git.read_text(encoding="utf-8").startswith("gitdir:"):
            gitdir = (ROOT / dot_git.read_text(encoding="utf-8").split(":", 1)[1].strip()).resolve()
            common = gitdir / "commondir"
            found += [gitdir,
                      (gitdir / common.read_text(encoding="utf-8").strip()).resolve() if common.is_file() else gitdir]
    except (OSError, ValueError):
        pass
    found = [path for path in dict.fromkeys(found) if path.exists()]
    return tuple(path for path in found if not any(other in path.parents for other in found))  # outermost only


def python():
    """How to run this Python in a message: '.venv/bin/python' (.venv\\Scripts\\python on Windows) unless the
    repository's venv is activated."""
    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() == venv.resolve() and os.environ.get("VIRTUAL_ENV") != str(venv):
        return os.path.join(".venv", Path(sys.executable).parent.name, "python")  # bin, or Scripts on Windows
    return "python"


def shown(path):
    """A path as a student reads it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def existing_folder(folder):
    """folder, resolved; ValueError when it is not a folder."""
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"no folder {folder}: expected an implementation folder laid out like exercises/")
    return path


def has_reference():
    """Whether this checkout holds the reference (the instructor's kata; the students' edition does not)."""
    return REFERENCE.is_dir() and any(REFERENCE.glob("*.py"))


def named_implementations():
    """How a tool's help names the implementations it takes by name: with 'solutions' only where the reference is."""
    return "solutions, exercises" if has_reference() else "exercises"


def kata_files():
    """The file names an implementation folder holds: those of the reference, or in the students' edition those of
    its shipped stubs."""
    if has_reference():
        return sorted(path.name for path in REFERENCE.glob("*.py"))
    try:
        return sorted(json.loads(SHIPPED_STUBS.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        raise RuntimeError(f"this copy of the kata has neither solutions/ nor {shown(SHIPPED_STUBS)}: it is "
                           f"incomplete") from None
