"""What the repository's own tests share: the pristine stubs and a student's copy of the repository, made fresh
in a temporary folder, so that every test holds whatever state a student has left exercises/ in."""

import ast
import os
import shutil
import time
from pathlib import Path

from kata.course.exercises import generate
from kata.course.repository import ROOT

STUDENT_FILES = ["grader.py", "train.py", "play.py", "manifest.toml", "pyproject.toml"]
STUDENT_DIRS = ["kata", "tests", "solutions", "lessons", "checkpoints"]


def write_stubs(folder):
    """folder (created) holding exercises/ as it is generated from solutions/: every stub unfinished."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def copy_of_repository(target):
    """A copy of the repository as a student first has it (exercises/ the pristine stubs), without .git or .venv;
    its grader.py, run with this Python, grades it with its own kata/ and keeps its state in its own .kata/."""
    target = Path(target)
    target.mkdir(parents=True)
    for name in STUDENT_FILES:
        shutil.copy2(ROOT / name, target / name)
    for name in STUDENT_DIRS:
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    write_stubs(target / "exercises")
    return target


def insert_first(path, qualname, line):
    """Insert line as the first statement of the function or method qualname ("name" or "Class.name") in path;
    return its line number."""
    source = path.read_text(encoding="utf-8")
    *owner, name = qualname.split(".")
    body = ast.parse(source).body
    if owner:
        body = next(c for c in body if isinstance(c, ast.ClassDef) and c.name == owner[0]).body
    node = next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == name)
    first = node.body[1] if isinstance(node.body[0], ast.Expr) else node.body[0]  # after the docstring
    lines = source.splitlines(keepends=True)
    lines.insert(first.lineno - 1, " " * first.col_offset + line + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return first.lineno


def alive(pid):
    """Whether the process pid exists and is not a zombie (dead, waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_for(condition, limit=30.0):
    """Whether condition() becomes true within limit seconds (a bound for a slow machine, not a measure)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def marked_processes(marker, variable="KATA_TEST_MARK"):
    """The pids of the live processes whose environment holds variable=marker (what a test started, and all they
    started in turn: children inherit the environment)."""
    wanted, found = f"{variable}={marker}".encode(), []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/environ", "rb") as stream:
                if wanted in stream.read().split(b"\0") and alive(int(entry)):
                    found.append(int(entry))
        except OSError:
            pass
    return found
