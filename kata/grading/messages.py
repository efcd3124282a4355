"""Failure messages as a report shows them: short, and naming files the way the reader knows them."""

import os
import re
from pathlib import Path

MESSAGE_CHARS = 400  # the longest message a report keeps of one test
TRACE_LINE = re.compile(r'\s*(File "|\S+\.py:\d+ in )')  # a line of a traceback


def short(text, limit=MESSAGE_CHARS):
    """The first lines of a failure, up to the assertion introspection, at most limit characters."""
    lines = []
    for line in str(text).replace("AssertionError: FAILURE: ", "AssertionError: ").strip().splitlines():
        if lines and (line.startswith(("assert ", "+  where")) or TRACE_LINE.match(line)):
            break  # pytest's introspection or pytest-check's traceback: the message above says it
        lines.append(line.rstrip())
    text = "\n".join(lines[:6])
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


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
