"""Tests of play.py (kata/tools/play.py): reading questions, answering them, the loop, bad checkpoints, the CLI,
line editing and history at a terminal."""

import importlib.util
import io
import os
import re
import select
import subprocess
import sys
import time

import numpy as np
import pytest

from kata.course.implementation import load
from kata.course.repository import ROOT
from kata.tools import checkpoint
from kata.tools.play import PRETRAINED, ParseError, Player, choose_impl, main, parse
from meta.helpers import copy_of_repository

try:
    import pty
except ImportError:  # Windows
    pty = None

pytestmark = pytest.mark.meta

REF = load("solutions")
OPERATION_LIST = "First, Second, Last, Max, Min"


@pytest.fixture(scope="module")
def player():
    model, header = checkpoint.restore(REF, PRETRAINED)
    return Player(REF, model, header)


# ---------------------------------------------------------------- parse

@pytest.mark.parametrize("line, expected", [
    ("Max ( 5 3 9 )", ("Max", [5, 3, 9])),
    ("Max(5,3,9)", ("Max", [5, 3, 9])),
    ("max 5 3 9", ("Max", [5, 3, 9])),
    ("MIN(4, 1,7)", ("Min", [4, 1, 7])),
    ("  first 1 2  ", ("First", [1, 2])),
    ("Second ( 0 0 )", ("Second", [0, 0])),
    ("LAST 9 8 7 6\n", ("Last", [9, 8, 7, 6])),
    ("Max 5, 3, 9", ("Max", [5, 3, 9])),
])
def test_parse_accepts_every_form(line, expected):
    assert parse(line, max_args=47) == expected


@pytest.mark.parametrize("line, max_args, expected", [
    ("", 47, "an empty line"),
    ("   \t ", 47, "an empty line"),
    ("Mean 1 2", 47, f"'Mean' is not an operation: use one of {OPERATION_LIST}"),
    ("Max 12 3", 47, "12 is above 9"),
    ("Max -1 3", 47, "-1 is negative"),
    ("Max a b", 47, "'a' is not a number"),
    ("Max 5 x 3", 47, "'x' is not a number"),
    ("Max 5", 47, "Max needs at least 2 arguments, got 1"),
    ("Min ( )", 47, "Min needs at least 2 arguments, got 0"),
    ("Max 1 2 3 4", 3, "4 arguments are too many for this model"),
    ("Max ( 5 3 9", 47, "unbalanced parentheses"),
    ("Max 5 3 9 )", 47, "unbalanced parentheses"),
    ("Max ((5 3 9))", 47, "unbalanced parentheses"),
    ("5 3 9", 47, "does not start with an operation"),
    ("( 5 3 9 )", 47, "does not start with an operation"),
])
def test_parse_rejects_bad_lines_saying_why(line, max_args, expected):
    with pytest.raises(ParseError) as info:
        parse(line, max_args)
    assert expected in str(info.value), str(info.value)
    assert isinstance(info.value, ValueError)


def test_parse_names_the_limit_for_too_many_arguments():
    with pytest.raises(ParseError, match="at most 3 arguments"):
        parse("First 1 2 3 4 5", max_args=3)
    assert parse("First 1 2 3", max_args=3) == ("First", [1, 2, 3])


def test_a_line_starting_with_a_digit_lists_the_operations():
    with pytest.raises(ParseError) as info:
        parse("9 Max 1 2", 47)
    assert OPERATION_LIST in str(info.value)


# ---------------------------------------------------------------- Player

def heatmap_rows(text):
    return [line for line in text.splitlines() if re.match(r"head \d+ ", line)]


def test_answer_to_a_canonical_question(player):
    text = player.answer("Max ( 5 3 9 )")
    assert "answer: 9" in text and "right" in text and "wrong" not in text, text
    assert re.search(r"probability (0\.9\d\d|1\.000)", text), text
    top = next(line for line in text.splitlines() if line.startswith("top 3:"))
    assert len(re.findall(r"\d\.\d{3}", top)) == 3, f"the top 3 need three probabilities: {top}"
    assert top.split()[2] == "9", top
    assert "read as" not in text, "a question already in the canonical form is not echoed"
    rows = heatmap_rows(text)
    heads = player.header["config"]["num_heads"]
    assert [row.split()[1] for row in rows] == [str(h) for h in range(heads)], f"one row per head:\n{text}"
    columns = ["Max", "(", "5", "3", "9", ")"]
    assert any(line.split() == columns for line in text.splitlines()), f"the heatmap's columns are the tokens:\n{text}"
    assert all(len(re.findall(r"\d\.\d\d", row)) == len(columns) for row in rows), text


def test_a_right_answer_given_a_low_probability_is_called_unsure():
    model, header = checkpoint.restore(REF, PRETRAINED)
    for name in ("W", "b"):  # flatter logits, the same order: the same answer, given a low probability
        setattr(model.output, name, getattr(model.output, name) * 0.05)
    text = Player(REF, model, header).answer("Max ( 5 3 9 )")
    match = re.search(r"answer: 9  \(probability (0\.\d{3}); (.*)\)", text)
    assert match and float(match.group(1)) < 0.5, text
    assert match.group(2) == "right, but unsure: under 0.5, nearly a guess", text
    one = REF.tokenize("1")[0]
    model.output.b[one] += 1.0  # now 1 comes first, still with a low probability
    assert "answer: 1  " in (wrong := Player(REF, model, header).answer("Max ( 5 3 9 )")), wrong
    assert "; wrong: the answer is 9, and unsure: under 0.5)" in wrong, wrong
    model, header = checkpoint.restore(REF, PRETRAINED)
    model.output.b[one] += 100.0  # 1, and sure of it
    sure = Player(REF, model, header).answer("Max ( 5 3 9 )")
    assert "answer: 1  (probability 1.000; wrong: the answer is 9)" in sure, sure


def test_answer_to_another_form_says_how_it_was_read(player):
    text = player.answer("max 5 3 9")
    assert text.splitlines()[0] == "read as: Max ( 5 3 9 )", text
    assert "answer: 9" in text and "right" in text
    assert "answer: 1" in player.answer("MIN(4, 1,7)")
    assert "answer: 2" in player.answer("  first 2 8 1  ")


def test_answer_warns_about_lengths_the_model_was_not_trained_on(player):
    text = player.answer("Max 1 2 3 4 5")
    assert "note: this model was trained on 3 arguments; with 5" in text, text
    assert "answer:" in text and len(heatmap_rows(text)) == player.header["config"]["num_heads"]


@pytest.mark.parametrize("line, expected", [("Mean 1 2", "'Mean' is not an operation"), ("Max 12 3", "above 9"),
                                            ("", "an empty line")])
def test_answer_to_a_bad_line_is_the_parse_message(player, line, expected):
    text = player.answer(line)
    assert text.startswith("? ") and expected in text, text
    assert "answer:" not in text


# ---------------------------------------------------------------- main

def test_main_reads_lines_until_end_of_input():
    lines = ["Max ( 5 3 9 )", "Mean 1 2", "min 4 1 7", "", "First(2, 8, 1)", "Max 12 3", "Max a b"]
    out = io.StringIO()
    code = main(["--impl", "solutions"], stdin=io.StringIO("\n".join(lines) + "\n"), out=out)
    text = out.getvalue()
    assert code == 0
    assert text.startswith(f"Loaded {PRETRAINED}, test accuracy 1.0000"), text[:200]
    answers = re.findall(r"^(?:> )?answer: (\S+)", text, flags=re.MULTILINE)
    assert answers == ["9", "1", "2"], text
    problems = re.findall(r"^> \? (.*)$", text, flags=re.MULTILINE)
    assert len(problems) == 4, text
    assert "'Mean' is not an operation" in problems[0] and "an empty line" in problems[1]
    assert "above 9" in problems[2] and "'a' is not a number" in problems[3]
    assert text.count("> ") == len(lines) + 1, "one prompt per line, and one for the end of input"
    assert text.rstrip().endswith("bye")


def test_main_answers_expressions_given_on_the_command_line():
    out = io.StringIO()
    assert main(["--impl", "solutions", "Max(5,3,9)", "Mean 1 2"], stdin=io.StringIO(), out=out) == 0
    text = out.getvalue()
    assert "answer: 9" in text and "? 'Mean' is not an operation" in text and "bye" not in text


def test_main_with_an_empty_input_says_bye():
    out = io.StringIO()
    assert main(["--impl", "solutions"], stdin=io.StringIO(""), out=out) == 0
    assert out.getvalue().rstrip().endswith("bye") and "answer:" not in out.getvalue()


def _truncated(path):
    data = PRETRAINED.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _npy(path):
    with open(path, "wb") as stream:
        np.save(stream, np.zeros(3))


def _heads_do_not_divide(path):
    model = REF.Transformer(vocab_size=20, embed_dim=8, num_heads=2, num_layers=1, ffn_dim=16, max_seq_len=12)
    checkpoint.save(path, model, {"vocab_size": 20, "embed_dim": 8, "num_heads": 3, "num_layers": 1, "ffn_dim": 16,
                                  "max_seq_len": 12})


@pytest.mark.parametrize("make", [
    pytest.param(lambda path: None, id="missing"),
    pytest.param(lambda path: path.mkdir(), id="folder"),
    pytest.param(lambda path: path.write_bytes(b""), id="empty"),
    pytest.param(_truncated, id="truncated"),
    pytest.param(lambda path: path.write_text("not a checkpoint\n"), id="text"),
    pytest.param(lambda path: np.savez(path, weights=np.zeros(3)), id="npz without header"),
    pytest.param(_npy, id="npy"),
    pytest.param(_heads_do_not_divide, id="heads do not divide"),
])
def test_main_with_a_bad_checkpoint_says_so_and_returns_1(tmp_path, capsys, make):
    path = tmp_path / "bad.npz"
    make(path)
    out = io.StringIO()
    code = main(["--impl", "solutions", "--checkpoint", str(path)], stdin=io.StringIO("Max 1 2 3\n"), out=out)
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith("play.py: ") and str(path) in captured.err, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert "answer:" not in out.getvalue()


def test_choose_impl_refuses_an_unfinished_implementation(stubs):
    with pytest.raises(SystemExit) as info:
        choose_impl(str(stubs))
    message = str(info.value.code)
    assert "exercises is not finished" in message and "python grader.py" in message, message
    assert re.search(r"\(lesson 0[0-5]\)", message), message
    assert choose_impl("solutions") == (REF, None)


def test_play_py_answers_from_the_command_line():
    proc = subprocess.run([sys.executable, "play.py", "Max(5,3,9)"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "answer: 9" in proc.stdout and "right" in proc.stdout, proc.stdout
    assert "read as: Max ( 5 3 9 )" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_play_py_reads_questions_piped_into_it(tmp_path):
    """A pipe is read line by line, as before: no line editing, no history written."""
    repository = copy_of_repository(tmp_path / "kata")
    proc = subprocess.run([sys.executable, "play.py", "--impl", "solutions"], cwd=repository, input="Min 7 4 8\n",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "> read as: Min ( 7 4 8 )" in proc.stdout and "answer: 4" in proc.stdout, proc.stdout
    assert proc.stdout.rstrip().endswith("bye") and not (repository / ".kata" / "play_history").exists()


# ---------------------------------------------------------------- at a terminal: line editing and history

def readline_available():
    return importlib.util.find_spec("readline") is not None


UP = "\x1b[A"  # what a terminal sends for the Up arrow
PROMPT = r"\n> $"  # the prompt, waiting


class Terminal:
    """A process in a pseudo-terminal: keys are typed into it and its screen output is read."""

    def __init__(self, arguments, cwd):
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(arguments, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                                     env={**os.environ, "TERM": "xterm"}, start_new_session=True)
        os.close(slave)
        self.master, self.text, self.seen = master, "", 0

    def type(self, keys):
        os.write(self.master, keys.encode())

    def expect(self, pattern, limit=60.0):
        """The output since the last expect, once it matches pattern (a generous bound, not a measure)."""
        end = time.monotonic() + limit
        while not re.search(pattern, self.text[self.seen:]):
            assert time.monotonic() < end, f"no {pattern!r} within {limit} s:\n{self.text[self.seen:]}"
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # the process ended and closed the terminal
                    data = b""
                assert data, f"the process ended before {pattern!r}:\n{self.text[self.seen:]}"
                self.text += data.decode("utf-8", "replace")
        new, self.seen = self.text[self.seen:], len(self.text)
        return new

    def close(self):
        """The exit status, once the process has ended (its output read to the end, so that it never writes into a
        closed terminal)."""
        end = time.monotonic() + 60
        while self.proc.poll() is None and time.monotonic() < end:
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    self.text += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        status = self.proc.wait(timeout=60)
        os.close(self.master)
        return status


def answer_of(screen):
    match = re.search(r"answer: (\S+)", screen)
    assert match, screen
    return match.group(1)


@pytest.mark.skipif(pty is None or not readline_available(), reason="needs a pseudo-terminal and readline")
def test_at_a_terminal_the_up_arrow_brings_back_the_last_question(tmp_path):
    repository = copy_of_repository(tmp_path / "kata")
    play = [sys.executable, "play.py", "--impl", "solutions"]
    terminal = Terminal(play, repository)
    terminal.expect(r"Ctrl-D quits\.\r?" + PROMPT)
    terminal.type("Min ( 7 4 8 )\r")
    first = terminal.expect(PROMPT)
    terminal.type(UP + "\r")
    again = terminal.expect(PROMPT)
    assert answer_of(first) == answer_of(again) == "4", again
    assert "Min ( 7 4 8 )" in again, f"Up should bring the question back onto the line:\n{again}"
    assert "\\x1b" not in again and "? " not in again, f"the arrow's escape sequence was read as text:\n{again}"
    terminal.type("\x04")  # Ctrl-D
    assert "bye" in terminal.expect("bye")
    assert terminal.close() == 0
    history = repository / ".kata" / "play_history"
    assert "Min ( 7 4 8 )" in history.read_text(), "the questions are kept for the next session"

    terminal = Terminal(play, repository)  # a new session starts with the questions of the last one
    terminal.expect(r"Ctrl-D quits\.\r?" + PROMPT)
    terminal.type(UP + "\r")
    assert answer_of(terminal.expect(PROMPT)) == "4"
    terminal.type("\x04")
    terminal.expect("bye")
    assert terminal.close() == 0
