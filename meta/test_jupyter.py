"""The notebooks where students use them: a saved notebook is never written over or called stale, the setup cell
finds the kata from any kernel, a cell stopped by an unfinished exercise says which and lets Run All go on, the
check is a table in Jupyter and text elsewhere, and `make lab` opens the repository's root with the project kernel."""

import contextvars
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from kata.authoring import notebooks
from kata.authoring.lessontext import SETUP
from kata.course.exercises import generate
from kata.course.manifest import lesson, lessons
from kata.course.repository import ROOT
from kata.grading.results import LessonResult, TestOutcome
from kata.student import unfinished
from kata.student.checkview import CheckView
from meta.helpers import write_stubs

pytestmark = pytest.mark.meta
LESSON = lesson("02")


# ---------------------------------------------------------------- saved notebooks: never written over, never stale

@pytest.fixture
def repo(tmp_path, monkeypatch):
    """The generator pointed at a copy of lessons/ and notebooks/ (the manifest is the repository's)."""
    shutil.copytree(ROOT / "lessons", tmp_path / "lessons")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.new.ipynb"))
    monkeypatch.setattr(notebooks, "ROOT", tmp_path)
    for item in lessons():  # generated as the repository's generator does now
        (tmp_path / item.notebook).write_text(notebooks.render(item))
    return tmp_path


def saved_by_jupyter(path, edit=None):
    """The notebook at path as JupyterLab saves it after a run: outputs, counts, metadata; edit(node) first."""
    node = nbformat.reads(path.read_text(), as_version=4)
    for count, cell in enumerate((c for c in node.cells if c.cell_type == "code"), 1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"printed by cell {count}\n")]
        cell.metadata["execution"] = {"iopub.status.idle": "2026-12-02T10:00:00.000Z"}
    node.metadata["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"}
    if edit:
        edit(node)
    path.write_text(nbformat.writes(node))
    return path.read_text()


def edit_the_lesson_text(root):
    text = root / LESSON.text
    text.write_text(text.read_text().replace("## Softmax\n", "## Softmax\n\nA sentence added upstream.\n", 1))


def run_generator(argv, capsys):
    status = notebooks.main(argv)
    return status, capsys.readouterr().out


def test_a_notebook_saved_with_outputs_is_up_to_date_and_left_alone(repo, capsys):
    path = repo / LESSON.notebook
    saved = saved_by_jupyter(path)
    assert notebooks.status(path, notebooks.render(LESSON)) == "up to date"
    assert run_generator(["--check"], capsys) == (0, "notebooks are up to date\n")
    assert run_generator([], capsys) == (0, "notebooks were already up to date\n")
    assert path.read_text() == saved


def test_a_notebook_the_student_edited_is_kept_and_not_called_stale(repo, capsys):
    path = repo / LESSON.notebook
    saved = saved_by_jupyter(path, lambda node: node.cells[2].__setitem__("source", "my own experiment = 1"))
    assert notebooks.status(path, notebooks.render(LESSON)) == "up to date"  # the text it came from is the same
    assert run_generator(["--check"], capsys)[0] == 0
    run_generator([], capsys)
    assert path.read_text() == saved
    assert not list(repo.glob("notebooks/*.new.ipynb"))


def test_when_the_text_changes_an_edited_notebook_is_kept_and_the_new_one_written_beside_it(repo, capsys):
    path = repo / LESSON.notebook
    saved = saved_by_jupyter(path, lambda node: node.cells[2].__setitem__("source", "my own experiment = 1"))
    edit_the_lesson_text(repo)
    fresh = notebooks.render(LESSON)
    assert notebooks.status(path, fresh) == "changed"
    status, out = run_generator(["--check"], capsys)
    assert status == 0, out
    assert out.splitlines()[-1] == "notebooks are up to date; 1 kept as you changed them (see above)", out
    assert f"{LESSON.notebook} is kept as it is" in out and "02_attention.new.ipynb" in out
    assert not (repo / "notebooks" / "02_attention.new.ipynb").exists(), "--check writes nothing"
    status, out = run_generator([], capsys)
    assert status == 0 and "new version is notebooks/02_attention.new.ipynb" in out, out
    assert out.splitlines()[-1] == "wrote 0 notebooks; 1 kept as you changed them (see above)", out
    assert path.read_text() == saved, "the student's notebook is never written over"
    assert (repo / "notebooks" / "02_attention.new.ipynb").read_text() == fresh
    assert "A sentence added upstream." in fresh


def test_when_the_text_changes_a_notebook_saved_with_outputs_is_kept_too(repo, capsys):
    path = repo / LESSON.notebook
    saved = saved_by_jupyter(path)  # the cells are the generated ones, the outputs may have taken long to get
    edit_the_lesson_text(repo)
    assert notebooks.status(path, notebooks.render(LESSON)) == "changed"
    assert run_generator(["--check"], capsys)[0] == 0
    run_generator([], capsys)
    assert path.read_text() == saved
    assert (repo / "notebooks" / "02_attention.new.ipynb").read_text() == notebooks.render(LESSON)


def test_when_the_text_changes_an_unchanged_notebook_is_stale_and_rewritten(repo, capsys):
    path = repo / LESSON.notebook
    saved_by_jupyter(path, lambda node: [cell.__setitem__("outputs", []) for cell in node.cells
                                         if cell.cell_type == "code"])  # counts and metadata only
    edit_the_lesson_text(repo)
    assert notebooks.status(path, notebooks.render(LESSON)) == "stale"
    status, out = run_generator(["--check"], capsys)
    assert status == 1 and out.strip() == f"stale notebooks (run `make notebooks`): {LESSON.notebook}", out
    assert run_generator([], capsys) == (0, "wrote 1 notebook\n")
    assert path.read_text() == notebooks.render(LESSON)
    assert run_generator(["--check"], capsys) == (0, "notebooks are up to date\n")


def test_a_missing_notebook_is_stale_and_an_unreadable_one_is_kept(repo, capsys):
    (repo / LESSON.notebook).unlink()
    other = repo / lesson("03").notebook
    other.write_text("not a notebook\n")
    status, out = run_generator(["--check"], capsys)
    assert status == 1 and LESSON.notebook in out.splitlines()[-1] and other.name not in out.splitlines()[-1], out
    run_generator([], capsys)
    assert (repo / LESSON.notebook).read_text() == notebooks.render(LESSON)
    assert other.read_text() == "not a notebook\n"
    assert (repo / "notebooks" / "03_layers.new.ipynb").read_text() == notebooks.render(lesson("03"))


def test_the_notebooks_record_their_digests_and_name_the_project_kernel():
    node = nbformat.reads((ROOT / LESSON.notebook).read_text(), as_version=4)
    record = node.metadata["kata"]
    assert record["generated_from"] == LESSON.text
    assert record["cells_sha256"] == notebooks.cells_digest(node)
    assert node.metadata["kernelspec"]["name"] == "transformer-kata"
    assert ".ipynb_checkpoints/" in (ROOT / ".gitignore").read_text().splitlines()


# ---------------------------------------------------------------- the setup cell, from a kernel without the kata

def setup_code():
    return "\n".join(line for line in SETUP.splitlines() if not line.startswith("%"))


def test_the_setup_cell_finds_the_repository_from_the_notebooks_folder(tmp_path):
    """A Python that has neither the kata nor numpy (-I -S: no site-packages, no PYTHONPATH), started in
    notebooks/ as Jupyter starts a kernel: the repository goes on sys.path, and the missing numpy is named with
    what to do."""
    finder = setup_code().split("try:")[0] + "\nprint(sys.path[0])\nimport kata.course.repository\n"
    found = subprocess.run([sys.executable, "-I", "-S", "-c", finder], cwd=ROOT / "notebooks",
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 0 and found.stdout.strip() == str(ROOT), found.stderr
    whole = subprocess.run([sys.executable, "-I", "-S", "-c", setup_code()], cwd=ROOT / "notebooks",
                           capture_output=True, text=True, timeout=60)
    last = whole.stderr.strip().splitlines()[-1]
    assert whole.returncode == 1 and last.startswith("ImportError: numpy cannot be imported by this kernel"), last
    assert "'Transformer kata (.venv)'" in last and "make lab" in last, last


# ---------------------------------------------------------------- unfinished exercises in IPython

def test_every_stub_message_is_recognised_as_an_unfinished_exercise():
    messages = [m for text in generate().values() for m in re.findall(r"raise NotImplementedError\('(.*)'\)", text)]
    assert len(messages) >= 20
    state = unfinished.Unfinished(shell=None)
    for message in messages:
        assert state.line_for(NotImplementedError(message)) == f"Unfinished exercise: {message}"
    assert state.line_for(NotImplementedError("my own placeholder")) is None
    assert state.line_for(NameError("name 'w' is not defined", name="w")) is None


def test_the_names_a_cell_binds_are_those_of_its_own_scope():
    cell = ("import numpy as np, os.path\nfrom math import sqrt as root\nx, (y, z) = 1, (2, 3)\nfor i in range(2):\n"
            "    w = i\nwith open('f') as f:\n    pass\ndef g(a):\n    inner = a\nclass C:\n    attribute = 1\n"
            "squares = [k * k for k in range(3)]\nx += 1\n")
    assert unfinished.assigned_names(None, cell) == {"np", "os", "root", "x", "y", "z", "i", "w", "f", "g", "C",
                                                     "squares"}
    assert unfinished.assigned_names(None, "this is not python") == set()


def execute(node, **env):
    import nbclient

    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        # the notebooks name the kernel `make lab` installs; here any Python 3 kernel of this Python does
        client = nbclient.NotebookClient(node, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(ROOT / "notebooks")}})
        try:
            # in a context of its own: jupyter_core keeps its event loop in a context variable, and one left in
            # this thread's context is taken (still running) by threads that copy it, e.g. test_lessons' runs
            contextvars.Context().run(client.execute)
        except nbclient.exceptions.CellExecutionError as error:
            return error
        return None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def texts(cell):
    return "".join(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
                   for o in cell.outputs)


def test_run_all_on_the_stubs_reaches_the_check_and_a_real_error_still_stops_it(tmp_path):
    stubs = write_stubs(tmp_path / "exercises")
    node = nbformat.reads((ROOT / LESSON.notebook).read_text(), as_version=4)
    node.cells.append(nbformat.v4.new_code_cell("raise NotImplementedError('my own placeholder')"))
    node.cells.append(nbformat.v4.new_code_cell("print('never reached')"))
    error = execute(node, KATA_IMPL=str(stubs))
    code = [cell for cell in node.cells if cell.cell_type == "code"]
    assert error is not None and "my own placeholder" in str(error), "an error of the student's own still stops"
    assert [cell.execution_count is not None for cell in code] == [True] * (len(code) - 1) + [False]
    lines = [texts(cell) for cell in code]
    stopped = [line for line in lines if line.startswith("Unfinished exercise: ")]
    assert stopped and all(line.count("\n") == 1 for line in stopped), lines
    assert 'reread lessons/02_attention.md, section "Softmax"' in stopped[0]
    assert not [o for cell in code[:-2] for o in cell.outputs if o.output_type == "error"]
    check = next(cell for cell in code if "notebook.check(" in cell.source)
    match = re.search(r"Lesson 02 \(Attention\): 0/(\d+) tests passed, 0/(\d+) points", texts(check))
    assert match and int(match.group(1)) > 0, texts(check)
    html = next(o.data["text/html"] for o in check.outputs if "text/html" in o.get("data", {}))
    assert html.count("<tr>") == int(match.group(1)) + 2 and "not implemented yet" in html


@pytest.mark.parametrize("damage", ["syntax error in another lesson's file", "a file deleted"])
def test_run_all_with_a_file_that_does_not_import_still_reaches_the_check(tmp_path, damage):
    """The reviewer appended `def broken(:` to exercises/optim.py (lesson 08): lesson 00's set-up cell failed and
    Run All stopped there, while the grader graded lesson 00. Now each cell that needs the implementation says in
    one line which file does not import, and the check cell grades what it can."""
    stubs = write_stubs(tmp_path / "exercises")
    if damage.startswith("syntax"):
        with open(stubs / "optim.py", "a", encoding="utf-8") as stream:
            stream.write("\ndef broken(:\n")
    else:
        (stubs / "layers.py").unlink()
    node = nbformat.reads((ROOT / lesson("00").notebook).read_text(encoding="utf-8"), as_version=4)
    error = execute(node, KATA_IMPL=str(stubs))
    assert error is None, f"Run All stopped: {str(error)[-1500:]}"
    code = [cell for cell in node.cells if cell.cell_type == "code"]
    said = [texts(cell) for cell in code]
    assert ("optim.py" if damage.startswith("syntax") else "layers") in said[0], said[0]
    assert any(text.startswith("Cannot run yet: ") for text in said[1:-1]), said
    assert re.match(r"Lesson 00 \(.*\): 0/\d+ tests passed", said[-1]), said[-1][:300]
    assert all(cell.get("execution_count") for cell in code), "every code cell ran"


@pytest.fixture(scope="module")
def on_the_stubs(tmp_path_factory):
    """Every notebook executed on the pristine stubs, two at a time: {id: (node, error)}."""
    from concurrent.futures import ThreadPoolExecutor

    stubs = write_stubs(tmp_path_factory.mktemp("stubs") / "exercises")

    def run(item):
        node = nbformat.reads((ROOT / item.notebook).read_text(), as_version=4)
        return node, execute(node, KATA_IMPL=str(stubs))

    saved = dict(os.environ)
    try:
        os.environ.update(KATA_IMPL=str(stubs))  # execute() restores what it sets; the threads share one value
        with ThreadPoolExecutor(2) as pool:
            return dict(zip([item.id for item in lessons()], pool.map(run, lessons())))
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("item", lessons(), ids=[item.id for item in lessons()])
def test_run_all_on_the_stubs_reaches_every_lessons_check(item, on_the_stubs):
    node, error = on_the_stubs[item.id]
    code = [cell for cell in node.cells if cell.cell_type == "code"]
    assert error is None, f"{item.notebook} stopped on the stubs:\n{str(error)[-3000:]}"
    assert all(cell.execution_count is not None for cell in code)
    assert any(texts(cell).startswith("Unfinished exercise: ") for cell in code[1:])
    check = next(cell for cell in code if "notebook.check(" in cell.source)
    assert re.search(rf"Lesson {item.id} \(.*\): 0/\d+ tests passed, 0/\d+ points", texts(check)), texts(check)


def test_a_cell_that_needs_what_an_unfinished_cell_left_undefined_is_skipped(tmp_path):
    stubs = write_stubs(tmp_path / "exercises")
    node = nbformat.v4.new_notebook()
    for source in [SETUP, "x = 1\nweights = impl.Softmax().forward(np.ones(3))\ny = 2",
                   "print(x, 'y' in dir())\nz = weights + 1", "print(z)", "print('the end')"]:
        node.cells.append(nbformat.v4.new_code_cell(source))
    assert execute(node, KATA_IMPL=str(stubs)) is None
    out = [texts(cell) for cell in node.cells]
    assert out[1].startswith("Unfinished exercise: softmax (lesson 02)")
    assert out[2].startswith("1 False\nSkipped: needs `weights`, left undefined above by an unfinished exercise: "
                             "softmax (lesson 02)"), out[2]
    assert out[3].startswith("Skipped: needs `z`") and out[4] == "the end\n", out


# ---------------------------------------------------------------- the check: a table in Jupyter, text elsewhere

def a_result(passed):
    message = ('exercises/attention.py:14: NotImplementedError: softmax (lesson 02) is not implemented yet: '
               'reread lessons/02_attention.md, section "Softmax" <&>')
    tests = [TestOutcome(f"tests/test_lesson02_attention.py::test_{i}", "passed" if i < passed else "failed",
                         "" if i < passed else message) for i in range(4)]
    return LessonResult(id="02", title="Attention", points=14, tests=tuple(tests))


def test_the_check_view_is_a_table_in_html_and_the_old_text_elsewhere():
    view = CheckView(a_result(1), ["a note"])
    text = view.text()
    assert text.splitlines()[:3] == ["Lesson 02 (Attention): 1/4 tests passed, 3.5/14 points",
                                     "  ok       test_0", "  FAILED   test_1"]
    assert "\nFirst failure, test_1:\nexercises/attention.py:14: NotImplementedError" in text
    assert text.endswith("a note") and repr(view) == text == str(view)
    html = view._repr_html_()
    assert html.count("<tr>") == 4 + 2 and html.count(">passed<") == 1 and html.count(">failed<") == 3
    assert "3.50/3.50" in html and "0.00/3.50" in html and "<b>3.5/14</b>" in html
    assert "&lt;&amp;&gt;" in html and "<&>" not in html, "messages are escaped"
    assert '<a href="../lessons/02_attention.md">lessons/02_attention.md</a>, section <b>Softmax</b>' in html
    full = CheckView(a_result(4))._repr_html_()
    assert "First failure" not in full and "4/4 tests passed, 14/14 points" in full


def test_the_check_prints_text_outside_ipython(tmp_path, capsys):
    from kata.student.notebook import check

    check("00", spec=str(write_stubs(tmp_path / "exercises")))
    out = capsys.readouterr().out
    assert re.match(r"Lesson 00 \(.*\): 0/\d+ tests passed, 0/\d+ points\n  FAILED ", out), out[:500]
    assert "<table" not in out


# ---------------------------------------------------------------- make lab

def _make_py():
    spec = importlib.util.spec_from_file_location("kata_make", ROOT / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_lab_opens_the_repository_root_with_the_project_kernel():
    make = _make_py()
    install, lab = make.lab_commands(["02", "--port", "8899"])
    assert install[:5] == ["-m", "ipykernel", "install", "--sys-prefix", "--name"]
    assert lab[:2] == ["-m", "jupyterlab"] and f"--ServerApp.root_dir={ROOT}" in lab
    assert "--port" in lab and lab[-1] == LESSON.notebook, lab
    assert make.lab_commands([], "02")[1][-1] == LESSON.notebook
    with pytest.raises(make.Refused, match=r"no notebooks/99_\*\.ipynb"):
        make.lab_commands(["99"])


def test_the_kernel_the_notebooks_name_is_the_one_make_lab_installs():
    make, kernel = _make_py(), notebooks.KERNEL
    assert (make.KERNEL_NAME, make.KERNEL_DISPLAY) == (kernel["name"], kernel["display_name"])
    assert make.lab_commands([])[0][-4:] == ["--name", kernel["name"], "--display-name", kernel["display_name"]]
    assert json.loads((ROOT / LESSON.notebook).read_text())["metadata"]["kernelspec"] == kernel
