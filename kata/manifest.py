"""The lesson manifest (manifest.toml at the repository root), read once."""

import functools
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Exercise:
    symbol: str  # a function, or Class.method
    file: str  # its file inside an implementation folder
    section: str  # the section of the lesson text that teaches it
    worked: bool = False  # given complete in the stubs, as a worked example


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    marker: str
    points: int
    text: str
    notebook: str
    depends: tuple  # lessons whose code this lesson's tests also run
    files: tuple
    exercises: tuple
    sections: tuple  # every section a message may point to


@functools.cache
def lessons():
    """Every lesson of manifest.toml, in order."""
    data = tomllib.loads((ROOT / "manifest.toml").read_text())
    result = []
    for entry in data["lesson"]:
        file_of = entry["files"][0] if len(entry["files"]) == 1 else None
        exercises = tuple(Exercise(e["symbol"], e.get("file", file_of), e["section"], e.get("worked", False))
                          for e in entry["exercises"])
        sections = tuple(dict.fromkeys([e.section for e in exercises] + entry.get("sections", [])))
        result.append(Lesson(entry["id"], entry["title"], entry["marker"], entry["points"], entry["text"],
                             entry["notebook"], tuple(entry["depends"]), tuple(entry["files"]), exercises, sections))
    return tuple(result)


def lesson(lesson_id):
    for item in lessons():
        if item.id == lesson_id:
            return item
    raise KeyError(f"no lesson {lesson_id!r} in manifest.toml")


def reread(lesson_id, section):
    """The pointer a failure message gives: 'reread lessons/03_layers.md, section "LayerNorm backward"'."""
    item = lesson(lesson_id)
    if section not in item.sections:
        raise KeyError(f"lesson {lesson_id} has no section {section!r}; manifest.toml lists {item.sections}")
    return f'reread {item.text}, section "{section}"'


def python():
    """How to run this Python in a message: '.venv/bin/python' unless the repository's venv is activated."""
    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() == venv.resolve() and os.environ.get("VIRTUAL_ENV") != str(venv):
        return ".venv/bin/python"
    return "python"
