"""Tests of failure messages as a student reads them: every one keeps the pointer to the section to reread,
however long it is (kata/grading/messages.py, gradescope.py), and names the exercise that called a module no lesson
teaches (kata/grading/reporter.py)."""

import ast
import re
import shutil

import numpy as np
import pytest

from kata.course.manifest import reread
from kata.course.repository import ROOT
from kata.grading import gradescope, report
from kata.grading.grade import grade
from kata.grading.messages import MESSAGE_CHARS, middle_cut, short
from kata.student import notebook
from meta.catalogue import build, catalogue
from meta.helpers import insert_first

pytestmark = pytest.mark.meta

SEE_BATCH = reread("00", "Batches, padding and masks")
SEE_FFN = reread("03", "The feed-forward network")
ARRAYS = str(np.arange(600).reshape(30, 20))  # a message quoting arrays: thousands of characters on many lines


def test_a_long_message_keeps_its_beginning_and_its_pointer_and_loses_its_middle():
    text = f"data.py:9: AssertionError: create_batch tokens: expected {ARRAYS.replace(chr(10), ' ')}; {SEE_BATCH}"
    kept = short(text)
    assert len(text) > 3 * MESSAGE_CHARS and len(kept) <= MESSAGE_CHARS, len(kept)
    assert kept.startswith("data.py:9: AssertionError: create_batch tokens: expected [[  0") and \
        kept.endswith(f"; {SEE_BATCH}") and " [...] " in kept, kept


def test_a_pointer_after_the_sixth_line_is_kept():
    kept = short(f"AssertionError: create_batch tokens: expected\n{ARRAYS}\n; {SEE_BATCH}")
    assert kept.startswith("AssertionError: create_batch tokens: expected\n[[  0") and \
        kept.endswith(f"\n[...] {SEE_BATCH}"), kept


def test_what_follows_the_pointer_is_cut_before_the_pointer_is():
    problems = "\n".join(f"  grad_W{k}: sign flipped" * 4 for k in range(30))
    kept = short(f"Linear(4, 3): the backward pass is not the exact gradient; {SEE_FFN}\n{problems}", 200)
    assert kept.startswith(f"Linear(4, 3): the backward pass is not the exact gradient; {SEE_FFN}\n  grad_W0") \
        and len(kept) <= 200, kept


def test_a_message_without_a_pointer_keeps_its_beginning():
    assert middle_cut("x" * 1000, 100) == "x" * 93 + " [...]"


def test_gradescope_keeps_the_pointer_of_a_long_message():
    message = f"AssertionError: create_batch tokens: expected {'[0 1 2] ' * 600}; {SEE_BATCH}"
    shown = gradescope._clip(message)
    assert shown.startswith("AssertionError: create_batch tokens: expected [0 1 2]") and \
        shown.endswith(f"; {SEE_BATCH}\n[shortened; run grader.py locally for the whole message]"), shown
    assert len(shown) <= gradescope.OUTPUT_CHARS + 60, len(shown)
    assert gradescope._clip(message, 500).splitlines()[0].endswith(SEE_BATCH)  # the summary's first failure


def _grade(folder, lesson_id, sandbox):
    return grade(str(folder), [lesson_id], sandbox=sandbox, allow_unconfined=True, name="mine")


def test_the_reports_of_a_long_first_failure_all_end_with_its_pointer(tmp_path, capsys):
    """A wrong create_batch fails with both arrays in the message: the JSON, the terminal report, Gradescope and
    a notebook's check all keep the pointer whole."""
    mutant = {m.id: m for m in catalogue()}["batch-left-padding"]
    folder = build(mutant, tmp_path / "impl")
    notebook.check("00", spec=str(folder))
    printed = capsys.readouterr().out
    assert "First failure, test_create_batch_by_hand:\nAssertionError: create_batch tokens:" in printed, printed
    assert f"\n[...] {SEE_BATCH}\n" in printed.split("First failure")[1], printed
    result = _grade(folder, "00", sandbox=False)
    entry = result.lessons[0]
    failure = entry.first_failure
    assert failure.name.endswith("test_create_batch_by_hand"), failure
    assert failure.message.endswith(SEE_BATCH) and len(failure.message) <= MESSAGE_CHARS, failure.message
    assert failure.message in report.report(result, "mine", student=False).replace("\n        ", "\n")
    for shown in (gradescope.lesson_output(entry), gradescope.summary(result)):
        assert SEE_BATCH in shown, shown


@pytest.fixture(scope="module")
def helper_module(tmp_path_factory):
    """The reference, with FeedForward.forward calling a module of the student's own that raises on (B, T, D)."""
    folder = tmp_path_factory.mktemp("helper") / "impl"
    shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "myutils.py").write_text(
        "def flat(x):\n    if x.ndim != 2:\n        raise ValueError(f'expected 2 axes, got {x.shape}')\n")
    insert_first(folder / "layers.py", "FeedForward.forward", "from .myutils import flat; flat(x)")
    return folder


def test_an_error_of_the_students_own_module_names_the_exercise_that_called_it(helper_module):
    failures = [t for t in _grade(helper_module, "03", sandbox=False).lessons[0].tests if not t.passed]
    assert failures, "the helper raises on (B, T, D): some test of lesson 03 must fail"
    for test in failures:
        assert test.message.startswith("mine/myutils.py:3: ValueError: expected 2 axes") and \
            test.message.endswith(f"raised in FeedForward.forward: {SEE_FFN}"), test.message


@pytest.mark.parametrize("sandbox", [False, True], ids=["in-process", "sandboxed"])
def test_an_error_of_the_kata_validation_names_the_exercise_that_called_it(tmp_path, sandbox):
    """validation.py belongs to the kata but to no exercise: an over-strict check a student added to FeedForward
    points to FeedForward, also from the sandbox's child (the error's trail)."""
    folder = tmp_path / "impl"
    shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    insert_first(folder / "layers.py", "FeedForward.forward", 'check_array(x, "x", ndim=2)')
    failures = [t for t in _grade(folder, "03", sandbox=sandbox).lessons[0].tests if not t.passed]
    assert failures, "the check refuses (B, T, D): some test of lesson 03 must fail"
    for test in failures:
        assert test.message.startswith("mine/validation.py:") and "ValueError: x must have 2 axes" in test.message \
            and test.message.endswith(f"raised in FeedForward.forward: {SEE_FFN}"), test.message


def _accepting_everything(folder):
    """folder (created): the reference with every `raise ValueError(...)` and `raise TypeError(...)` a pass: an
    implementation that refuses no input."""
    shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))

    class Accept(ast.NodeTransformer):
        def visit_Raise(self, node):
            called = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            refuses = isinstance(called, ast.Name) and called.id in ("ValueError", "TypeError")
            return ast.copy_location(ast.Pass(), node) if refuses else node

    for path in folder.glob("*.py"):
        path.write_text(ast.unparse(Accept().visit(ast.parse(path.read_text()))))
    return folder


def test_an_input_that_should_have_been_refused_is_named_with_its_section(tmp_path):
    """Every test that expects an input to be refused says which input and where the lesson says so, never
    pytest's bare 'DID NOT RAISE' (tests/helpers.py: assert_raises)."""
    folder = _accepting_everything(tmp_path / "impl")
    result = grade(str(folder), [f"0{n}" for n in range(8)], sandbox=False, allow_unconfined=True, name="mine")
    refusals = [(entry.id, test) for entry in result.lessons for test in entry.tests
                if "reject" in test.name and not test.passed]
    lessons_refusing = {lesson_id for lesson_id, _ in refusals}  # (numpy itself refuses what the others test)
    assert lessons_refusing >= {"00", "01", "02", "05", "06", "07"}, [test.name for _, test in refusals]
    for lesson_id, test in refusals:
        assert "DID NOT RAISE" not in test.message and "expected " in test.message, (test.name, test.message)
        assert re.search(rf'; reread lessons/{lesson_id}_\w+\.md, section "[^"]+"$', test.message), \
            (test.name, test.message)
    silent = [test.message for _, test in refusals if "nothing was raised" in test.message]
    assert silent, "the implementation refuses nothing: some test must say that nothing was raised"
