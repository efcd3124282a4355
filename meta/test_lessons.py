"""The lesson texts, the learning path and the notebooks agree with the manifest, and the notebooks run."""

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from kata.authoring import docs, notebooks
from kata.authoring.lessontext import blocks, headings
from kata.course.exercises import generate
from kata.course.manifest import lessons
from kata.course.repository import ROOT

pytestmark = pytest.mark.meta
LESSONS = lessons()
IDS = [item.id for item in LESSONS]
POINTER = re.compile(r'reread (lessons/[\w./-]+\.md), section "([^"]+)"')


def text_of(item):
    path = ROOT / item.text
    assert path.is_file(), f"lesson {item.id}: {item.text} does not exist (manifest.toml names it)"
    return path.read_text()


@pytest.mark.parametrize("item", LESSONS, ids=IDS)
def test_lesson_text_has_its_title_and_every_section_the_manifest_names(item):
    text = text_of(item)
    first = text.splitlines()[0]
    assert first == f"# Lesson {item.id}: {item.title}", f"{item.text}: first line {first!r}"
    found = headings(text)
    missing = [section for section in item.sections + (notebooks.CHECK_SECTION,) if section not in found]
    assert not missing, f"{item.text} lacks the sections {missing} (its ## headings are {found})"
    assert len(found) == len(set(found)), f"{item.text}: a ## heading is repeated: {found}"


@pytest.mark.parametrize("item", LESSONS, ids=IDS)
def test_every_exercise_is_named_in_its_lesson(item):
    text = text_of(item)
    for exercise in item.exercises:
        assert exercise.symbol in text, f"{item.text} never names the exercise {exercise.symbol}"
        assert exercise.file in text, f"{item.text} never names the file {exercise.file} of {exercise.symbol}"


def test_every_reread_pointer_in_the_repository_names_a_section_that_exists():
    sources = [*sorted((ROOT / "tests").glob("*.py")), ROOT / "lessons" / "hints.toml"]
    found = set()
    for text in [*generate().values(), *(path.read_text() for path in sources)]:  # the stubs as generated
        found |= set(POINTER.findall(text))
    stubs = {(item.text, e.section) for item in LESSONS for e in item.exercises if not e.worked}
    assert stubs <= found, f"the stubs' messages should point to every exercise's section: {stubs - found}"
    pointers = found | {(item.text, section) for item in LESSONS for section in item.sections}
    for text_path, section in sorted(pointers):
        assert (ROOT / text_path).is_file(), f"a message points to {text_path}, which does not exist"
        assert section in headings((ROOT / text_path).read_text()), (
            f'a message points to {text_path}, section "{section}", which is not a ## heading there')


def test_the_learning_path_is_generated_from_the_manifest():
    path = ROOT / "lessons" / "README.md"
    assert path.read_text() == docs.learning_path(), "lessons/README.md is stale: run `make exercises`"
    for item in LESSONS:
        assert f"]({Path(item.text).name})" in path.read_text()


TRACKS = (("00", "10"), ("11", "15"))  # the encoder, then the GPT: lesson 00 gives the length of each


def test_lesson_texts_give_study_times_adding_up_to_the_course_length():
    times = {item.id: docs.study_time(item) for item in LESSONS}
    assert all(times.values()), f"lessons without 'about N hours' in their text: {times}"
    intro = text_of(LESSONS[0]).replace("\n", " ")
    for first, last in TRACKS:
        hours = sum(t for lesson_id, t in times.items() if first <= lesson_id <= last)
        assert 4 <= hours <= 20, (first, last, times)
        stated = re.findall(rf"lessons {first} to {last}, takes (\d+(?:\.\d+)?) hours", intro)
        assert [float(h) for h in stated] == [hours], (
            f"{LESSONS[0].text} should give each track's length as its lessons' times add up: "
            f"'lessons {first} to {last}, takes {hours:g} hours' (found {stated}; the times: {times})")


@pytest.mark.parametrize("item", LESSONS, ids=IDS)
def test_notebook_is_generated_from_its_lesson_and_valid(item):
    path = ROOT / item.notebook
    assert path.is_file(), f"{item.notebook} is missing: run `make notebooks`"
    text = notebooks.render(item)
    state = notebooks.status(path, text)
    assert state != "stale", f"{item.notebook} is stale: run `make notebooks`"
    node = nbformat.reads(path.read_text(), as_version=4)
    assert state != "changed" and notebooks.cells_digest(node) == node.metadata["kata"]["cells_sha256"], (
        f"{item.notebook}: its cells differ from what the generator wrote: edit the lesson text, not the notebook "
        f"(`git checkout {item.notebook}`, then `make notebooks`)")
    assert path.read_text() == text, (f"{item.notebook} holds what Jupyter adds on saving (outputs, metadata): the "
                                      f"repository keeps notebooks as generated (`git checkout {item.notebook}`)")
    node = nbformat.reads(path.read_text(), as_version=4)
    nbformat.validate(node)
    code = [cell.source for cell in node.cells if cell.cell_type == "code"]
    runs = [block.text for block in blocks(text_of(item)) if block.kind == "code"]
    assert code[0].endswith("impl = notebook.load()"), "the first code cell is the setup"
    assert code[1:] == [c for c in code[1:] if c in runs or c == notebooks.check_cell(item.id)]
    assert [c for c in code if c in runs] == runs, "every run block of the text is a code cell, in order"
    assert code.count(notebooks.check_cell(item.id)) == 1
    assert all(not cell.get("outputs") for cell in node.cells if cell.cell_type == "code"), "outputs stored"


def test_lesson_text_blocks_split_run_blocks_from_shown_ones():
    text = ("# Lesson 99: x\n\nintro\n\n```python\nshown = 1\n```\n\n```python run\nran = 2\n```\n\n"
            "## Check yourself\n\n````markdown\n```python run\nquoted = 3\n```\n````\n")
    parts = blocks(text)
    assert [p.kind for p in parts] == ["markdown", "code", "markdown"]
    assert parts[1].text == "ran = 2"
    assert "shown = 1" in parts[0].text and "quoted = 3" in parts[2].text
    assert headings(text) == ["Check yourself"]
    with pytest.raises(ValueError, match="not closed"):
        blocks("# Lesson 99: x\n\n```python run\nx = 1\n")


def test_the_live_implementation_re_imports_after_a_save(tmp_path):
    import shutil
    import time

    from kata.student.notebook import load

    folder = shutil.copytree(ROOT / "solutions", tmp_path / "mine", ignore=shutil.ignore_patterns("__pycache__"))
    impl = load(str(folder))
    assert impl.VOCAB_SIZE == 20 and not hasattr(impl.module(), "ADDED")
    time.sleep(0.01)
    with open(folder / "__init__.py", "a") as stream:
        stream.write("\nADDED = 42\n")
    assert impl.ADDED == 42, "after a file of the implementation changed, its names come from a fresh import"


# ---------------------------------------------------------------- every notebook runs in a real kernel

@pytest.fixture(scope="module")
def executed():
    """Every notebook executed against the reference in a Jupyter kernel, two at a time: {id: (node, error)}."""
    import nbclient

    def run(item):
        node = nbformat.reads((ROOT / item.notebook).read_text(), as_version=4)
        client = nbclient.NotebookClient(node, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str((ROOT / item.notebook).parent)}})
        try:  # a loop of its own: jupyter_core's run_sync may find one an earlier test left running
            asyncio.run(client.async_execute())
        except Exception as error:  # reported by the test of that lesson
            return node, error
        return node, None

    saved = os.environ.get("KATA_IMPL")
    os.environ["KATA_IMPL"] = "solutions"
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        with ThreadPoolExecutor(2) as pool:
            return dict(zip(IDS, pool.map(run, LESSONS)))
    finally:
        if saved is None:
            os.environ.pop("KATA_IMPL")
        else:
            os.environ["KATA_IMPL"] = saved


@pytest.mark.parametrize("item", LESSONS, ids=IDS)
def test_notebook_runs_against_the_reference_and_passes_its_checks(item, executed):
    node, error = executed[item.id]
    assert error is None, f"{item.notebook} failed in a kernel:\n{str(error)[-3000:]}"
    outputs = [output for cell in node.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    check = next(cell for cell in node.cells if cell.cell_type == "code" and "notebook.check(" in cell.source)
    # the check is displayed (a table in a browser); its text/plain is the same report as printed elsewhere
    printed = "".join(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
                      for o in check.outputs)
    assert any("text/html" in o.get("data", {}) for o in check.outputs), "the check shows no table in Jupyter"
    match = re.search(r"(\d+)/(\d+) tests passed, ([\d.]+)/([\d.]+) points", printed)
    assert match and match.group(1) == match.group(2) and match.group(3) == match.group(4), printed[:2000]


def test_the_notebook_check_runs_a_students_own_folder_in_process(tmp_path, capsys):
    """A student's run is not a grading of untrusted code: their folder is used as it is (a helper module of
    their own included), where the grader's strict intake would take the kata's files only."""
    import shutil

    from kata.student.notebook import check

    folder = shutil.copytree(ROOT / "solutions", tmp_path / "mine", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "mytools.py").write_text("def shift(x):\n    return x - x.max(axis=-1, keepdims=True)\n")
    loss = folder / "loss.py"
    loss.write_text(loss.read_text() + "\nfrom .mytools import shift  # noqa: E402,F401\n")
    check("06", spec=str(folder))
    out = capsys.readouterr().out
    assert re.search(r"\b(\d+)/\1 tests passed", out) and "sandbox" not in out, out
