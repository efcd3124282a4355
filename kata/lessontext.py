"""Read a lesson text (lessons/NN_name.md): its sections and the code blocks its notebook runs.

A fenced block opened with ```python run is an experiment: the lesson's notebook runs it, in order, after a
setup cell that defines np, plt, notebook and impl (the student's implementation). Every other block is only
shown. Run a lesson's experiments against the reference, as the suite does through the notebooks:

    python -m kata.lessontext lessons/03_layers.md [--impl solutions]
"""

import argparse
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RUN_FENCE = "```python run"
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")

# The setup cell of every notebook; `impl` re-imports itself when a file of the implementation is saved.
SETUP = """\
# Setup. `impl` is your code in exercises/ (start Jupyter with KATA_IMPL=solutions to use the reference instead).
# It re-imports itself whenever you save a file there: after editing, just re-run the cell you are on.
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: one thread is faster (set before numpy loads)
%matplotlib inline
import numpy as np
import matplotlib.pyplot as plt
from kata import notebook
impl = notebook.load()"""


@dataclass(frozen=True)
class Block:
    kind: str  # "markdown" or "code"
    text: str


def blocks(text):
    """Split a lesson text into markdown and run-code blocks, in order (fences of run blocks removed)."""
    result, current, code, fence = [], [], None, None
    for number, line in enumerate(text.splitlines(), 1):
        if code is not None:
            if line.strip() == "```":
                result.append(Block("code", "\n".join(code).rstrip()))
                code = None
            else:
                code.append(line)
            continue
        if fence is not None:  # inside a block that is only shown: a ```python run inside it is text
            current.append(line)
            if line.strip().startswith(fence):
                fence = None
            continue
        if line.strip() == RUN_FENCE:
            if current and "\n".join(current).strip():
                result.append(Block("markdown", "\n".join(current).strip("\n")))
            current, code = [], []
            continue
        if line.lstrip().startswith(("```", "~~~")):
            fence = line.lstrip()[:3]
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
        fence = None
        for line in block.text.splitlines():
            stripped = line.lstrip()
            if fence is not None:
                if stripped.startswith(fence):
                    fence = None
                continue
            if stripped.startswith(("```", "~~~")):
                fence = stripped[:3]
                continue
            match = HEADING.match(line)
            if match and len(match.group(1)) == level:
                titles.append(match.group(2))
    return titles


def run(path, impl="solutions", out=sys.stdout):
    """Execute the run blocks of a lesson text in one namespace (matplotlib without a display)."""
    import matplotlib
    matplotlib.use("Agg")
    from . import notebook

    code_blocks = [block.text for block in blocks(Path(path).read_text()) if block.kind == "code"]
    setup = "\n".join(line for line in SETUP.splitlines() if not line.startswith("%"))
    namespace = {"__name__": "__lesson__"}
    exec(compile(setup.replace("notebook.load()", f"notebook.load({impl!r})"), "<setup>", "exec"), namespace)
    for index, code in enumerate(code_blocks, 1):
        start = time.perf_counter()
        exec(compile(code, f"<{Path(path).name}: run block {index}>", "exec"), namespace)
        print(f"run block {index}/{len(code_blocks)}: {time.perf_counter() - start:.2f} s", file=out)
        import matplotlib.pyplot as plt
        plt.close("all")
    return len(code_blocks)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the experiments (```python run blocks) of a lesson text.")
    parser.add_argument("path")
    parser.add_argument("--impl", default="solutions")
    args = parser.parse_args(argv)
    count = run(args.path, args.impl)
    print(f"{args.path}: {count} run blocks, all ran; sections: {headings(Path(args.path).read_text())}")


if __name__ == "__main__":
    main()
