"""What the tools print reaches any terminal: where the output's encoding lacks a character the tools use (the
heatmaps' shades, a lesson text's arrows; Windows writes to a pipe or a file in its ANSI code page, cp1252), the
character is replaced instead of ending the program with a UnicodeEncodeError."""

import codecs
import sys


def printable_output(streams=None):
    """Replace unencodable characters on stdout and stderr (or streams) whose encoding is not UTF-8."""
    for stream in streams or (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        try:
            if encoding and codecs.lookup(encoding).name != "utf-8" and hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="replace")
        except (LookupError, ValueError, OSError):
            pass
