"""Generate one Jupyter notebook per lesson from its lesson text and the manifest; never edit them by hand.

    python -m kata.authoring.notebooks          # write notebooks/NN_name.ipynb where missing or stale
    python -m kata.authoring.notebooks --check  # exit 1 if a notebook is missing or stale; write nothing

A notebook is the lesson text cut into one cell per `##` section, a setup cell that loads the student's
implementation, the text's ```python run blocks as code cells, and a cell running the lesson's tests right
after the "Check yourself" heading. Generation is deterministic: cell ids are derived from the lesson and the
cell's position, outputs are empty, and the JSON is written with sorted keys.

A student's notebook is never written over. Each notebook records in its metadata ("kata") two SHA-256 digests:
of the notebook as generated, and of its cells (kind and source). It is stale when the generator would now record
another notebook digest; it was changed by the student when its cells no longer give the recorded cells digest
(outputs, execution counts and metadata, which Jupyter adds on saving, are not in it). A stale notebook is
rewritten only if its cells are unchanged and it holds no outputs; otherwise it is kept, its fresh version
written beside it as NN_name.new.ipynb, and --check does not count it as stale.
"""

import argparse
import hashlib
import json
import sys

import nbformat

from ..course.files import write_atomic
from ..course.manifest import lessons
from ..course.repository import ROOT
from .lessontext import SETUP, Fences, blocks

CHECK_SECTION = "Check yourself"
# the kernel `make lab` installs (python -m ipykernel install --sys-prefix --name transformer-kata)
KERNEL = {"display_name": "Transformer kata (.venv)", "language": "python", "name": "transformer-kata"}
METADATA = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
NEW_SUFFIX = ".new.ipynb"  # a fresh notebook written beside one the student changed


def _split_sections(markdown):
    """A markdown block cut before each `## ` heading that is outside fenced code."""
    pieces, current, fences = [], [], Fences()
    for line in markdown.splitlines():
        if fences.fence is None and line.startswith("## ") and current:
            pieces.append("\n".join(current).strip("\n"))
            current = []
        fences.inside(line)
        current.append(line)
    if current:
        pieces.append("\n".join(current).strip("\n"))
    return [piece for piece in pieces if piece.strip()]


def check_cell(lesson_id):
    return (f'# Lesson {lesson_id}\'s tests on your implementation (the same as `python grader.py --lesson '
            f'{lesson_id}`).\nnotebook.check("{lesson_id}")')


def build(item, text):
    """The notebook (a NotebookNode) of one lesson, from its text."""
    cells = []
    for block in blocks(text):
        if block.kind == "code":
            cells.append(("code", block.text))
            continue
        for piece in _split_sections(block.text):
            cells.append(("markdown", piece))
            if piece.startswith(f"## {CHECK_SECTION}") and piece.splitlines()[0].strip() == f"## {CHECK_SECTION}":
                cells.append(("code", check_cell(item.id)))
    if not cells or cells[0][0] != "markdown" or not cells[0][1].startswith(f"# Lesson {item.id}"):
        raise ValueError(f"{item.text} must start with the line '# Lesson {item.id}: {item.title}'")
    if ("code", check_cell(item.id)) not in cells:
        raise ValueError(f"{item.text} has no '## {CHECK_SECTION}' section (its notebook runs the tests there)")
    title, rest = cells[0][1].split("\n", 1) if "\n" in cells[0][1] else (cells[0][1], "")
    intro = [("markdown", title + "\n\n" + rest.strip() if rest.strip() else title),
             ("markdown", f"This notebook is generated from [`{item.text}`](../{item.text}) by `make notebooks`: "
                          "edit the lesson text, not the notebook. Run the cells from the top; the setup cell loads "
                          "your implementation."),
             ("code", SETUP)]
    cells = intro + cells[1:]
    notebook = nbformat.v4.new_notebook(metadata=json.loads(json.dumps(METADATA)))
    for index, (kind, source) in enumerate(cells):
        maker = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        cell = maker(source=source, id=f"lesson{item.id}-{index:03d}")
        notebook.cells.append(cell)
    notebook.metadata["kata"] = {"generated_from": item.text, "cells_sha256": cells_digest(notebook),
                                 "notebook_sha256": _sha256(nbformat.writes(notebook))}
    nbformat.validate(notebook)
    return notebook


def _sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cells_digest(notebook):
    """The digest of a notebook's cells as a student changes them: kinds and sources, nothing Jupyter adds."""
    return _sha256(json.dumps([[cell.cell_type, cell.source] for cell in notebook.cells]))


def render(item):
    """The text of the .ipynb file of one lesson."""
    return nbformat.writes(build(item, (ROOT / item.text).read_text(encoding="utf-8"))) + "\n"


def status(path, text):
    """What the notebook file at path is, against text (its fresh render): 'missing', 'up to date' (whatever
    Jupyter or the student added since), 'stale' (generated from an older text, cells unchanged and no outputs:
    safe to rewrite) or 'changed' (generated from an older text and holding the student's cells or outputs, or
    not readable as a generated notebook: never written over)."""
    if not path.exists():
        return "missing"
    saved = path.read_bytes()
    if saved == text.encode("utf-8"):
        return "up to date"
    fresh = json.loads(text)["metadata"]["kata"]
    try:
        node = nbformat.reads(saved.decode("utf-8"), as_version=4)
        recorded = dict(node.metadata["kata"])
    except Exception:  # not JSON, not a notebook, no record: it is not ours to judge, keep it
        return "changed"
    if recorded.get("notebook_sha256") == fresh["notebook_sha256"]:
        return "up to date"
    outputs = any(cell.get("outputs") for cell in node.cells)
    return "stale" if cells_digest(node) == recorded.get("cells_sha256") and not outputs else "changed"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook is stale; write nothing")
    args = parser.parse_args(argv)
    stale, kept = [], []
    for item in lessons():
        path = ROOT / item.notebook
        text = render(item)
        state = status(path, text)
        if state == "up to date":
            continue
        if state == "changed":
            beside = path.with_name(path.name.removesuffix(".ipynb") + NEW_SUFFIX)
            kept.append(f"{item.notebook} is kept as it is: its cells or outputs are not the ones generated, so "
                        f"they may hold your work; the lesson's new version "
                        + (f"is {beside.relative_to(ROOT)}" if not args.check else
                           f"would be written beside it by `make notebooks`, as {beside.relative_to(ROOT)}"))
            if not args.check:
                write_atomic(beside, text)
            continue
        stale.append(item.notebook)
        if not args.check:
            write_atomic(path, text)
    for line in kept:
        print(line)
    others = f"; {len(kept)} kept as you changed them (see above)" if kept else ""
    if args.check:
        print("stale notebooks (run `make notebooks`): " + ", ".join(stale) if stale else
              f"notebooks are up to date{others}")
        return 1 if stale else 0
    print(f"wrote {len(stale)} notebook{'' if len(stale) == 1 else 's'}{others}" if stale or kept
          else "notebooks were already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
