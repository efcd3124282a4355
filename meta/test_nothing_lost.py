"""No command a student can run loses their work: a copy of the repository whose exercises/ holds finished work
(the reference without its solution markers) and a notebook the student saved goes through every make target and
every grader command, and afterwards every byte of that work is still somewhere in the copy: in place, or in a
backup the command made and named.

`make lock` is left out: it writes requirements.lock only (never a student's file) and needs a fresh resolution
from PyPI. `make clean` runs last, with .venv pointing at a folder of its own, since it removes .venv. The other
targets use the .venv of the Python running this test (KATA_VENV), so nothing is installed unless a target needs
an extra that is missing there (make lab: JupyterLab).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kata.course.repository import REFERENCE, ROOT
from meta.helpers import copy_of_repository

pytestmark = pytest.mark.meta

EXTRA_FILES = ["Makefile", "make.py", "requirements.lock", "README.md", "ARCHITECTURE.md", "CONTRACT.md"]
EXTRA_DIRS = ["notebooks", "benchmarks"]
MARKERS = ("# BEGIN SOLUTION", "# END SOLUTION")


def finished_work(folder):
    """folder/exercises/ as a student who finished every lesson has it: the reference without its markers, plus a
    file of the student's own."""
    for path in REFERENCE.glob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        text = "".join(line for line in lines if line.strip() not in MARKERS)
        (folder / "exercises" / path.name).write_text(text + "# finished by the student\n", encoding="utf-8")
    (folder / "exercises" / "scratch_notes.py").write_text("# my notes on lesson 03\nX = 1\n", encoding="utf-8")


def saved_notebook(folder):
    """A lesson notebook as a student saves it from Jupyter: a cell of their own and outputs."""
    path = sorted((folder / "notebooks").glob("02_*.ipynb"))[0]
    notebook = json.loads(path.read_text(encoding="utf-8"))
    notebook["cells"].append({"cell_type": "code", "execution_count": 7, "id": "student-own-cell", "metadata": {},
                              "outputs": [{"name": "stdout", "output_type": "stream", "text": ["42\n"]}],
                              "source": ["print(6 * 7)  # my experiment"]})
    path.write_text(json.dumps(notebook, indent=1) + "\n", encoding="utf-8")


def contents(folder):
    """{sha256 of a file's bytes: its path} of every file under folder (.venv and caches aside)."""
    found = {}
    for path in Path(folder).rglob("*"):
        if path.is_file() and not {".venv", "__pycache__", ".pytest_cache"} & set(path.parts):
            found.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    return found


def work_of(folder):
    """{relative path: sha256} of the student's files: exercises/, notebooks/ and .kata/."""
    work = {}
    for part in ("exercises", "notebooks", ".kata"):
        for path in (folder / part).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                work[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return work


@pytest.fixture(scope="module")
def student_copy(tmp_path_factory):
    folder = copy_of_repository(tmp_path_factory.mktemp("finished") / "kata")
    for name in EXTRA_FILES:
        shutil.copy2(ROOT / name, folder / name)
    for name in EXTRA_DIRS:
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    finished_work(folder)
    saved_notebook(folder)
    backup = folder / ".kata" / "backup" / "20260101-000000"
    backup.mkdir(parents=True)
    (backup / "layers.py").write_text("# an earlier backup\n", encoding="utf-8")
    return folder


def make(folder, target, args="", stdin="", venv=None, timeout=900):
    env = dict(os.environ, KATA_VENV=str(venv or Path(sys.prefix)), PYTHON=sys.executable, ARGS=args)
    env.pop("MAKEFLAGS", None)
    return subprocess.run(["make", "--no-print-directory", "-C", str(folder), target], input=stdin, env=env,
                          capture_output=True, text=True, timeout=timeout)


def grader(folder, *args, stdin=""):
    return subprocess.run([sys.executable, str(folder / "grader.py"), *args], cwd=folder, input=stdin,
                          capture_output=True, text=True, timeout=900)


# every make target but lock (see the docstring), clean last; ARGS chosen to keep each run short
TARGETS = [
    ("help", ""),
    ("setup", ""),
    ("grade", "--lesson 00"),
    ("test", "-q -x tests/test_lesson00_data.py"),
    ("train", "--size small --epochs 1 --no-progress"),
    ("play", ""),
    ("lab", "--version"),
    ("bench", "--help"),
    ("notebooks", ""),
    ("exercises", ""),
]
GRADER = [
    ("status",), ("hint", "03"), ("hint", "03", "LayerNorm.forward"), ("watch",), ("reset", "03"),
    ("--lesson", "01", "--json", "out/grade.json", "--gradescope", "out/results.json"),
    ("batch", "exercises", "--out", "out/batch", "--lesson", "00"),
    ("package-gradescope", "--out", "out/autograder.zip"),
]


def test_every_make_target_and_grader_command_keeps_the_students_work(student_copy):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    before, folder = work_of(student_copy), student_copy
    ran = []
    for target, args in TARGETS:
        result = make(folder, target, args, stdin="Max ( 5 3 9 )\n")
        assert result.returncode == 0, f"make {target} ARGS='{args}' failed:\n{result.stdout}\n{result.stderr}"
        ran.append(f"make {target}")
    for command in GRADER:
        result = grader(folder, *command)
        # batch grades exercises/ as a submission: the sandbox may refuse on a machine without one (exit 2)
        assert result.returncode in ((0, 2) if command[0] == "batch" else (0,)), (
            f"grader.py {' '.join(command)}:\n{result.stdout}\n{result.stderr}")
        ran.append("grader.py " + " ".join(command))
    clean_venv = folder / "throwaway-venv"
    clean_venv.mkdir()
    result = make(folder, "clean", venv=clean_venv)
    assert result.returncode == 0, result.stderr
    assert not clean_venv.exists()
    ran.append("make clean")

    after = contents(folder)
    lost = {path: digest for path, digest in before.items() if digest not in after}
    assert not lost, (f"after {', '.join(ran)}, these files' contents are nowhere in the copy any more: "
                      f"{sorted(lost)}")
    # what a backup holds is said, and the student's own file was never touched
    assert (folder / "exercises" / "scratch_notes.py").read_text(encoding="utf-8").startswith("# my notes")
