"""Failure messages as a report shows them: short, and naming files the way the reader knows them."""

import os
import re
from pathlib import Path

MESSAGE_CHARS = 400  # the longest message a report keeps of one test
TRACE_LINE = re.compile(r'\s*(File "|\S+\.py:\d+ in )')  # a line of a traceback
POINTER = re.compile(r'reread \S+\.md, section "[^"\n]*"')  # kata.course.manifest.reread's pointer
CUT = " [...] "  # where a message was shortened
BEFORE_POINTER = 40  # the characters kept just before a pointer when the middle of a message is cut


def short(text, limit=MESSAGE_CHARS):
    """The first lines of a failure, up to the assertion introspection, at most limit characters; the pointer to
    the lesson (`reread ..., section "..."`) is always kept whole, even when it comes after the sixth line."""
    lines = []
    for line in str(text).replace("AssertionError: FAILURE: ", "AssertionError: ").strip().splitlines():
        if lines and (line.startswith(("assert ", "+  where")) or TRACE_LINE.match(line)):
            break  # pytest's introspection or pytest-check's traceback: the message above says it
        lines.append(line.rstrip())
    kept = lines[:6]
    last = next((line for line in reversed(lines) if POINTER.search(line)), None)
    if last is not None and last not in kept:
        kept.append(CUT.lstrip() + POINTER.findall(last)[-1])  # the lines between are cut
    return middle_cut("\n".join(kept), limit)


def middle_cut(text, limit=MESSAGE_CHARS):
    """text in at most limit characters: what is cut is the middle, never the beginning of the first line nor the
    last pointer to the lesson (`reread ..., section "..."`), nor the few characters just before that pointer."""
    if len(text) <= limit:
        return text
    pointers = list(POINTER.finditer(text))
    if not pointers:
        return text[: max(0, limit - len(CUT))].rstrip() + CUT.rstrip()
    start, end = pointers[-1].span()
    before, pointer, after = text[:start], text[start:end], text[end:]
    room = limit - len(pointer)
    if room <= len(CUT):  # a pointer longer than the limit (a limit that small is not used): the pointer alone
        return pointer
    if len(before) <= room:
        kept = room - len(before)
        return before + pointer + (after[: kept - len(CUT)].rstrip() + CUT.rstrip() if kept > len(CUT) else "")
    tail = min(len(before), max(0, min(BEFORE_POINTER, (room - len(CUT)) // 3)))
    head = room - len(CUT) - tail
    return before[:head].rstrip() + CUT + before[len(before) - tail:].lstrip() + pointer


def cleaner(replacements):
    """A function that replaces temporary paths in a message by the names a reader knows, then shortens it."""
    # longest first: a folder before the folder that holds it
    order = sorted(replacements.items(), key=lambda pair: -max(len(str(pair[0])), len(str(Path(pair[0]).resolve()))))

    def clean(text):
        for path, name in order:
            text = rename(text, path, name)
        return short(re.sub(r"kata_submission_[0-9a-f]{10}", "submission", text))
    return clean


def rename(data, folder, shown):
    """data (a string, or dicts and lists holding strings) with every spelling of the path folder replaced by
    shown; an empty shown drops the folder and the separator after it."""
    spellings = sorted({str(folder), str(Path(folder).resolve())}, key=len, reverse=True)
    if isinstance(data, str):
        for spelling in spellings:
            data = data.replace(spelling + os.sep, shown + "/" if shown else "").replace(spelling, shown)
        return data
    if isinstance(data, dict):
        return {key: rename(value, folder, shown) for key, value in data.items()}
    if isinstance(data, list):
        return [rename(value, folder, shown) for value in data]
    return data
