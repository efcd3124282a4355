"""Generate one Jupyter notebook per lesson from its lesson text and the manifest; never edit them by hand.

    python -m kata.authoring.notebooks          # (re)write notebooks/NN_name.ipynb for every lesson
    python -m kata.authoring.notebooks --check  # exit 1 if a notebook is missing or differs from its text

A notebook is the lesson text cut into one cell per `##` section, a setup cell that loads the student's
implementation, the text's ```python run blocks as code cells, and a cell running the lesson's tests right
after the "Check yourself" heading. Generation is deterministic: cell ids are derived from the lesson and the
cell's position, outputs are empty, and the JSON is written with sorted keys.
"""

import argparse
import sys

import nbformat

from ..course.files import write_atomic
from ..course.manifest import lessons
from ..course.repository import ROOT
from .lessontext import SETUP, Fences, blocks

CHECK_SECTION = "Check yourself"
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


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
    notebook = nbformat.v4.new_notebook(metadata=METADATA)
    for index, (kind, source) in enumerate(cells):
        maker = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        cell = maker(source=source, id=f"lesson{item.id}-{index:03d}")
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def render(item):
    """The text of the .ipynb file of one lesson."""
    return nbformat.writes(build(item, (ROOT / item.text).read_text(encoding="utf-8"))) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook is stale; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for item in lessons():
        path = ROOT / item.notebook
        text = render(item)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(item.notebook)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text)
    if args.check:
        print("stale notebooks (run `make notebooks`): " + ", ".join(stale) if stale else "notebooks are up to date")
        return 1 if stale else 0
    print(f"wrote {len(stale)} notebooks" if stale else "notebooks were already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
