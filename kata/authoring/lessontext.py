"""Read a lesson text (lessons/NN_name.md): its sections and the code blocks its notebook runs.

A fenced block opened with ```python run is an experiment: the lesson's notebook runs it, in order, after a
setup cell that defines np, plt, notebook and impl (the student's implementation). Every other block is only
shown. `python -m kata.student.notebook lessons/03_layers.md` runs a lesson's experiments outside Jupyter.
"""

import re
from dataclasses import dataclass

RUN_FENCE = "```python run"
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")

# The setup cell of every notebook; `impl` re-imports itself when a file of the implementation is saved. It finds the
# repository from the notebook's folder (a kernel starts there), so a kernel that has not installed kata works too;
# notebook.load() also makes a cell stopped by an unfinished exercise print one line (kata/student/unfinished.py).
SETUP = """\
# Setup. `impl` is your code in exercises/ (start Jupyter with KATA_IMPL=path/to/folder to use another one).
# It re-imports itself whenever you save a file there: after editing, just re-run the cell you are on.
import os, sys
from pathlib import Path
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: one thread is faster (set before numpy loads)
# the repository is the folder above this notebook that holds kata/: any Python kernel can then import the kata
_root = next((str(p) for p in (Path.cwd(), *Path.cwd().parents) if (p / "kata" / "student").is_dir()), None)
if _root and _root not in sys.path:
    sys.path.insert(0, _root)
try:
    import numpy as np
    import matplotlib.pyplot as plt
    from kata.student import notebook
except ImportError as missing:
    raise ImportError(f"{missing.name} cannot be imported by this kernel's Python ({sys.executable}): choose the "
                      "kernel 'Transformer kata (.venv)' (Kernel > Change Kernel), which `make lab` installs "
                      "with the kata's dependencies") from None
%matplotlib inline
impl = notebook.load()"""


@dataclass(frozen=True)
class Block:
    kind: str  # "markdown" or "code"
    text: str


class Fences:
    """Whether each line of Markdown, fed in order, lies in a fenced block that is only shown (``` or ~~~),
    its delimiters included."""

    def __init__(self):
        self.fence = None  # the delimiter of the open block, or None

    def inside(self, line):
        stripped = line.lstrip()
        if self.fence is not None:
            if stripped.startswith(self.fence):
                self.fence = None
            return True
        if stripped.startswith(("```", "~~~")):
            self.fence = stripped[:3]
            return True
        return False


def blocks(text):
    """Split a lesson text into markdown and run-code blocks, in order (fences of run blocks removed)."""
    result, current, code, fences = [], [], None, Fences()
    for number, line in enumerate(text.splitlines(), 1):
        if code is not None:
            if line.strip() == "```":
                result.append(Block("code", "\n".join(code).rstrip()))
                code = None
            else:
                code.append(line)
            continue
        if fences.fence is None and line.strip() == RUN_FENCE:  # inside a shown block it is text
            if current and "\n".join(current).strip():
                result.append(Block("markdown", "\n".join(current).strip("\n")))
            current, code = [], []
            continue
        fences.inside(line)
        current.append(line)
    if code is not None:
        raise ValueError(f"a ```python run block is not closed (it starts before line {number})")
    if current and "\n".join(current).strip():
        result.append(Block("markdown", "\n".join(current).strip("\n")))
    return result


def headings(text, level=2):
    """The titles of the headings of one level (## by default), outside code blocks, in order."""
    titles = []
    for block in blocks(text):
        if block.kind != "markdown":
            continue
        fences = Fences()
        for line in block.text.splitlines():
            match = None if fences.inside(line) else HEADING.match(line)
            if match and len(match.group(1)) == level:
                titles.append(match.group(2))
    return titles
