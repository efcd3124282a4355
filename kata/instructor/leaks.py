"""Which lines of the reference's solutions appear in a folder (the students' edition must hold none).

A solution line is a line between '# BEGIN SOLUTION' and '# END SOLUTION' of solutions/*.py, stripped; blank and
comment-only lines are not counted, nor lines that also occur outside the solution regions (given code, which the
stubs show anyway), nor lines made of names and constants only (`return None`, `result = {}`, `return x, y`: they
say nothing of a solution), nor the few lines of ALLOWED: generic API the lessons teach by name. Every text file of the
folder is read line by line (a notebook: the source of each cell); binary files are skipped.

Lines are compared without their comments and with runs of spaces made one, so a copy that drops the reference's
trailing comment or respaces it is found; a solution line of at least SUBSTRING characters is also found inside a
longer line (a hint's sentence, two statements joined by `;`), a shorter one only as a whole line.
"""

import ast
import io
import json
import re
import tokenize
from pathlib import Path
from typing import NamedTuple

from ..course.exercises import BEGIN, END
from ..course.repository import REFERENCE

# line: why it may appear in the edition (each is named and explained by a lesson text or the contract)
ALLOWED = {
    "model.zero_grad()": "a step of the training loop named by the contract (CONTRACT.md, the layer protocol) "
                         "and taught in lessons 07-09; the tests and the walkthrough call it",
    "model.backward(loss_fn.backward())": "the backward pass of a training step, as lessons 07-09 and the "
                                          "walkthrough write it out: the call protocol CONTRACT.md states",
    "optimizer.step()": "the optimiser's one method (CONTRACT.md), called by lessons 08-09 and the tests",
    "logits = model.forward(tokens, mask)": "the model's call as CONTRACT.md states it; lessons 08 and 09 write "
                                            "out the training step with it, the walkthrough and analysis call it",
    "loss = loss_fn.forward(logits, targets)": "the loss's call as CONTRACT.md states it (lesson 08's training "
                                               "step)",
    "tokens, targets, mask = create_batch(dataset)": "lesson 00's create_batch as CONTRACT.md states it (lesson 09)",
    "for block in model.blocks:": "the contract's list of blocks (CONTRACT.md), walked by lesson 09's figures",
    "x = block.forward(x, mask)": "a block's call as CONTRACT.md states it; lesson 05 shows the blocks applied in "
                                  "turn (the contract gives the model's composition)",
    "dx = block.backward(dx)": "a block's backward call (the layer protocol); lesson 07 shows the chain through "
                               "the blocks in reverse",
    "pairs += block.get_parameters()": "the layer protocol's get_parameters (CONTRACT.md), as lesson 07 gathers "
                                       "them",
    "order = np.random.default_rng(seed).permutation(n)": "lesson 00 names the one permutation the contract's "
                                                          "split uses (same seed, same split)",
    '"Max": max, "Min": min}': "the task's table of operations (lesson 00 defines them; play.py and lesson 09's "
                               "tests name them)",
    "out = np.asarray(f(x), dtype=np.float64)": "a set-up line of lesson 07's numerical-gradient example",
    "grad = np.zeros(x.shape)": "a set-up line of lesson 07's numerical-gradient example",
}
SUBSTRING = 16  # the shortest solution line looked for inside longer lines
# the syntax of a line made of names and constants only
PLAIN = (ast.Module, ast.Expr, ast.Return, ast.Assign, ast.Name, ast.Constant, ast.Tuple, ast.List, ast.Dict,
         ast.Load, ast.Store, ast.Pass, ast.Break, ast.Continue)


class Hit(NamedTuple):
    file: str  # relative to the folder scanned; a notebook's cell as "notebooks/x.ipynb cell 4"
    line: int
    text: str
    source: str  # where the reference has it: "solutions/optim.py:41"

    def __str__(self):
        return f"{self.file}:{self.line}: {self.text}   (the reference's {self.source})"


def plain(text):
    """Whether a line is made of names and constants only (no call, attribute, operator or index)."""
    if text in ("else:", "try:", "finally:"):  # a clause's keyword alone tells nothing
        return True
    try:
        tree = ast.parse(text)
    except SyntaxError:  # a part of a statement (a continuation line, an `elif x:`): not plain
        return False
    return all(isinstance(node, PLAIN) for node in ast.walk(tree))


def normal(line):
    """A line without its comment (where Python's tokenizer finds one), stripped, its runs of spaces made one."""
    text = line.strip()
    if "#" in text:
        try:
            comments = [token for token in tokenize.generate_tokens(io.StringIO(text + "\n").readline)
                        if token.type == tokenize.COMMENT]
        except (tokenize.TokenError, SyntaxError, IndentationError):
            comments = []
        if comments:
            text = text[:comments[0].start[1]].rstrip()
    return re.sub(r"\s+", " ", text)


def solution_lines(reference=REFERENCE):
    """{stripped line: 'solutions/file.py:N'} of every line inside a solution region that is not blank, not a
    comment, not allowed, and found nowhere outside the regions."""
    inside, outside = {}, set()
    for path in sorted(Path(reference).glob("*.py")):
        within = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            text = normal(line)
            if line.strip() == BEGIN:
                within = True
            elif line.strip() == END:
                within = False
            elif within:
                inside.setdefault(text, f"solutions/{path.name}:{number}")
            else:
                outside.add(text)
    return {text: where for text, where in inside.items()
            if text and not text.startswith("#") and text not in outside and text not in ALLOWED and not plain(text)}


def _texts(path, relative):
    """[(name shown, [lines])] of a file: a notebook's cells one by one; [] for a binary file."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(text).get("cells", [])
        except ValueError:
            return [(relative, text.splitlines())]
        return [(f"{relative} cell {index}", "".join(cell.get("source", "")).splitlines())
                for index, cell in enumerate(cells)]
    return [(relative, text.splitlines())]


def scan(folder, reference=REFERENCE):
    """[Hit] of every solution line found in a file of folder, in file order."""
    wanted = solution_lines(reference)
    longer = [text for text in wanted if len(text) >= SUBSTRING]
    hits = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        for name, lines in _texts(path, path.relative_to(folder).as_posix()):
            for number, line in enumerate(lines, start=1):
                text = normal(line)
                found = [text] if text in wanted else [part for part in longer if part in text]
                hits += [Hit(name, number, part, wanted[part]) for part in found]
    return hits
