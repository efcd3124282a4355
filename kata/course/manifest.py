"""The lesson manifest (manifest.toml at the repository root), read once: the one list of lessons, exercises,
files, sections, points and dependencies."""

import functools
import re
import tomllib
from dataclasses import dataclass

from .repository import ROOT


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
    data = tomllib.loads((ROOT / "manifest.toml").read_text(encoding="utf-8"))
    result = []
    for entry in data["lesson"]:
        file_of = entry["files"][0] if len(entry["files"]) == 1 else None
        exercises = tuple(Exercise(e["symbol"], e.get("file", file_of), e["section"], e.get("worked", False))
                          for e in entry["exercises"])
        sections = tuple(dict.fromkeys([e.section for e in exercises] + entry.get("sections", [])))
        result.append(Lesson(entry["id"], entry["title"], entry["marker"], entry["points"], entry["text"],
                             entry["notebook"], tuple(entry["depends"]), tuple(entry["files"]), exercises, sections))
    return tuple(result)


def _lesson_id(text):
    """'3', '03', 'lesson03', ' Lesson3 ' -> '03' (any other text comes back stripped and in lower case)."""
    text = str(text).strip().lower().removeprefix("lesson")
    return text.zfill(2) if text.isdigit() else text


def lesson(lesson_id):
    """The lesson for '3', '03' or 'lesson03'; ValueError listing the valid ids otherwise."""
    wanted = _lesson_id(lesson_id)
    for item in lessons():
        if item.id == wanted:
            return item
    raise ValueError(f"unknown lesson {lesson_id!r}: expected one of {', '.join(i.id for i in lessons())}")


def lesson_ids(ids):
    """Manifest-ordered lesson ids from ids (None or empty means all; "2" means "02"; "02,03" is two ids);
    unknown ids raise ValueError."""
    known = [item.id for item in lessons()]
    ids = [ids] if isinstance(ids, str) else ids
    if not ids:
        return known
    wanted = {_lesson_id(part) for entry in ids for part in str(entry).split(",") if part.strip()}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise ValueError(f"unknown lesson {', '.join(unknown)}: the lessons are {', '.join(known)}")
    return [i for i in known if i in wanted]


def owners(file_name):
    """The ids of the lessons whose exercises live in file_name (none for code given to students)."""
    return [item.id for item in lessons() if file_name in item.files]


# the pointer reread() writes, as found in a message: (lesson text, section)
POINTER = re.compile(r'reread (lessons/[\w./-]+\.md), section "([^"]+)"')


def reread(lesson_id, section):
    """The pointer a failure message gives: 'reread lessons/03_layers.md, section "LayerNorm backward"'."""
    item = lesson(lesson_id)
    if section not in item.sections:
        raise KeyError(f"lesson {lesson_id} has no section {section!r}; manifest.toml lists {item.sections}")
    return f'reread {item.text}, section "{section}"'
