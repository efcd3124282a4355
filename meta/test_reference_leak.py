"""No report shows a line of the reference, whatever a submission reads: a spy submission gathers every file it
can find that holds a solution (its own folder, the repository around the `kata` package its process runs, /tmp,
the home folders) and puts pieces of them in everything that reaches a report: exception messages, exception type
names (hex), returned values (strings and their hex). It is graded with a broken file (which the grader repairs)
and with --isolated (each lesson beside the reference's code for the other lessons), through the grader's JSON,
the batch's JSON and CSV, and Gradescope's results.json and output. No line of a reference file that is not
public anyway (in the stubs, the lesson texts, the contract) may appear in any of them, as text or as hex.

That the spy can find the reference where it is within reach is checked too (test_the_spy_finds_the_reference_
where_it_can_read_it), so the test cannot pass by a spy that finds nothing.
"""

import json
import os
import subprocess
import sys

import pytest

from kata.course.exercises import BEGIN, END, generate
from kata.course.repository import REFERENCE, ROOT
from kata.grading.grade import WITHHELD, _credit_from
from kata.grading.results import LessonResult, TestOutcome
from meta.helpers import write_stubs

pytestmark = pytest.mark.meta
LESSONS = "03,06"  # 03 does not run model.py (broken below); 06 runs every file before it
# what a student has anyway (and the child may read): the texts, the contract, the grader's own code
PUBLIC = [*ROOT.glob("lessons/*.md"), *ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("kata/**/*.py"), ROOT / "CONTRACT.md",
          ROOT / "README.md"]

SPY = r'''
import os as _os, sys as _sys, time as _time

def _gather(budget=3.0):
    """Pieces of what is within reach of solutions (their regions first) and tests."""
    stop, seen, texts = _time.monotonic() + budget, set(), []
    here = _os.path.dirname(_os.path.abspath(__file__))
    kata = _sys.modules.get("kata")
    home = _os.path.dirname(_os.path.dirname(_os.path.abspath(kata.__file__))) if kata else here
    for start in (here, _os.path.dirname(here), home, _os.getcwd(), "/tmp", "/autograder", "/root", "/home"):
        for folder, folders, files in _os.walk(start):
            if _time.monotonic() > stop or folder.count(_os.sep) - start.count(_os.sep) > 5:
                folders[:] = []
                continue
            folders[:] = [f for f in folders if f not in (".venv", "proc", "sys", ".mirror", ".library")]
            for name in files:
                path = _os.path.realpath(_os.path.join(folder, name))
                if path in seen or not name.endswith((".py", ".json", ".txt", ".md")):
                    continue
                seen.add(path)
                try:
                    with open(path, errors="replace") as stream:
                        text = stream.read(400000)
                except OSError:
                    continue
                if "BEGIN " + "SOLUTION" in text or "def test_" in text:
                    texts.append(text)
    marks = ("BEGIN " + "SOLUTION", "END " + "SOLUTION")
    regions = [r.split(marks[1])[0] for t in texts for r in t.split(marks[0])[1:]]  # its own folder's first
    tests = [t for t in texts if marks[0] not in t]
    size = 1000  # as much as a message may carry
    pieces = [t[i:i + size] for t in [*regions, *tests] for i in range(0, len(t), size)]
    return pieces or ["nothing found"]

_PIECES = getattr(_sys, "_spy_pieces", None) or _gather()  # once per process
_sys._spy_pieces = _PIECES
_PACKAGE = __name__.rpartition(".")[0] or __name__
_COUNT = [0]

def _piece():
    _COUNT[0] += 1
    return _PIECES[(_COUNT[0] - 1) % len(_PIECES)]

def _spy(*args, **kwargs):
    text = _piece()
    if _COUNT[0] % 3 == 0:
        raise type("X" + text.encode().hex()[:180], (ValueError,), {})(text.encode().hex()[:1000])
    if _COUNT[0] % 3 == 1:
        raise ValueError(text)
    return text

def _plant():
    import inspect
    for module in list(_sys.modules.values()):
        if not getattr(module, "__name__", "").startswith(_PACKAGE):
            continue
        for key, value in list(vars(module).items()):
            if key.startswith("_"):
                continue
            if inspect.isfunction(value) and value.__module__ == module.__name__:
                setattr(module, key, _spy)
            elif inspect.isclass(value) and value.__module__ == module.__name__:
                for attr, member in list(vars(value).items()):
                    if inspect.isfunction(member) and attr != "__init__":
                        setattr(value, attr, _spy)

_plant()
'''


def _secret_lines():
    """Lines of the reference's solutions and of the lesson tests that nothing public holds (16+ characters)."""
    public = "\n".join([*generate().values(), *(p.read_text(errors="replace") for p in PUBLIC if p.is_file())])
    lines = set()
    for path in [*REFERENCE.glob("*.py"), *ROOT.glob("tests/*.py")]:
        inside = path.parent != REFERENCE
        for line in path.read_text().splitlines():
            inside = inside or BEGIN in line
            if END in line and path.parent == REFERENCE:
                inside = False
            text = line.strip()
            if inside and len(text) >= 16 and text not in public:
                lines.add(text)
    return lines


def _leaks(text, secrets):
    found = [line for line in secrets if line in text or line.encode().hex() in text]
    return sorted(found)


def _spy_submission(folder):
    write_stubs(folder)
    for path in folder.glob("*.py"):  # every file: under --isolated a lesson keeps only its own
        if path.name != "__init__.py":
            path.write_text(path.read_text() + SPY)
    (folder / "model.py").write_text((folder / "model.py").read_text() + "\ndef broken(:\n")
    return folder


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Every text a student could be shown of the spy's gradings."""
    from meta.test_adversarial import sandbox_powers
    refused = sandbox_powers()[0]
    if refused:  # the grader refuses to run it unconfined here, and so does this test
        pytest.skip(refused)
    work = tmp_path_factory.mktemp("leak")
    spy = _spy_submission(work / "class" / "mallory" / "exercises")
    python = [sys.executable, str(ROOT / "grader.py")]
    texts = {}
    for name, options in (("grader", []), ("grader --isolated", ["--isolated"])):
        out = work / f"{len(texts)}.json"
        run = subprocess.run([*python, "--impl", str(spy), "--lesson", LESSONS, "--timeout", "30", "--json", str(out),
                              *options], capture_output=True, text=True, cwd=ROOT)
        texts[name] = out.read_text() + run.stdout + run.stderr
    run = subprocess.run([*python, "batch", str(work / "class"), "--out", str(work / "batch"), "--lesson", LESSONS,
                          "--isolated", "--timeout", "30", "--workers", "1"], capture_output=True, text=True, cwd=ROOT)
    texts["batch --isolated"] = run.stdout + run.stderr + "".join(
        path.read_text() for path in sorted((work / "batch").rglob("*")) if path.is_file())
    results = work / "results.json"
    run = subprocess.run([sys.executable, "-m", "kata.grading.gradescope", str(spy.parent), str(results),
                          "--lesson", LESSONS, "--isolated", "--timeout", "30"], capture_output=True, text=True,
                         cwd=ROOT)
    texts["gradescope --isolated"] = results.read_text() + run.stdout + run.stderr
    return texts


@pytest.mark.parametrize("channel", ["grader", "grader --isolated", "batch --isolated", "gradescope --isolated"])
def test_no_report_holds_a_line_of_the_reference(reports, channel):
    text = reports[channel]
    assert '"lessons"' in text or '"tests"' in text, text[-2000:]  # it graded
    assert "ValueError" in text  # the spy's raises reached the report
    secrets = _secret_lines()
    assert len(secrets) > 200
    leaked = _leaks(text, secrets)
    assert not leaked, f"{len(leaked)} lines of the reference in the {channel} report, e.g. {leaked[:3]}"


def test_the_spy_finds_the_reference_where_it_can_read_it(tmp_path):
    """Run where nothing hides the reference (a copy of it beside the spy, as --isolated's folders once were), the
    spy's pieces hold lines of the reference: the test above would see them if a report carried them."""
    folder = tmp_path / "isolated"
    folder.mkdir()
    for path in REFERENCE.glob("*.py"):
        (folder / path.name).write_text(path.read_text())
    (folder / "spy.py").write_text(SPY.replace("startswith(_PACKAGE)", "startswith('nothing')"))
    code = "import sys, json; sys.path.insert(0, sys.argv[1]); import spy; print(json.dumps(spy._PIECES))"
    pieces = json.loads(subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                                       cwd=tmp_path, check=True).stdout)
    assert len(_leaks("\n".join(pieces), _secret_lines())) > 100


def test_isolated_credit_keeps_only_the_verdicts_of_the_run_beside_the_reference():
    """Under --isolated, a lesson shows the verdicts of the run beside the reference and nothing else of it: its
    messages, notes and time come from the run with the submission's own code."""
    names = ["t::a", "t::b", "t::c"]
    beside = LessonResult("04", "Block", 5, (TestOutcome(names[0], "passed"), TestOutcome(names[1], "failed", "SECRET"),
                                             TestOutcome(names[2], "timeout", "SECRET")),
                          run_note="SECRET note", seconds=99.0)
    own = LessonResult("04", "Block", 5, (TestOutcome(names[0], "failed", "own a"), TestOutcome(names[1], "passed"),
                                          TestOutcome(names[2], "error", "own c")), run_note="", seconds=1.5)
    merged = _credit_from(beside, own)
    assert [t.status for t in merged.tests] == ["passed", "failed", "error"]
    assert [t.message for t in merged.tests] == ["", WITHHELD, "own c"]
    assert merged.seconds == 1.5 and "SECRET" not in json.dumps(merged.to_json())
    assert os.path.basename(__file__) not in WITHHELD  # (the message names no file)
