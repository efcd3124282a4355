"""Tests of what every tool's command line shares: each option's help states its default, and every output path is
checked (kata.course.files.check_output) before any work starts: one line naming the option, exit status 2."""

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kata.course.files import OutputPathError, check_output
from kata.course.repository import ROOT

pytestmark = pytest.mark.meta


# ---------------------------------------------------------------- every option's help states its default

def parser_modules():
    """Every module of the repository that builds a command-line parser (grader.py, kata/, benchmarks/)."""
    paths = [ROOT / "grader.py", *sorted((ROOT / "kata").rglob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py"))]
    return [".".join(path.relative_to(ROOT).with_suffix("").parts) for path in paths
            if "ArgumentParser(" in path.read_text()]


class Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def parser_of(module_name, monkeypatch):
    """The parser module_name's main(argv) builds, caught as it starts parsing (nothing of the tool runs)."""
    def capture(parser, *args, **kwargs):
        raise Captured(parser)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    module = importlib.import_module(module_name)
    assert hasattr(module, "main"), f"{module_name} builds a parser: its main(argv) should parse the command line"
    with pytest.raises(Captured) as info:
        module.main([])
    return info.value.parser


def every_parser(parser, name):
    """(name, parser) of parser and of each of its subcommands."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from every_parser(sub, f"{name} {command}")


def shown_default(default):
    """How a default value should appear in a help text (None when only the word "default" can be asked for)."""
    if default is None or default == argparse.SUPPRESS:
        return None
    if isinstance(default, (list, tuple)):
        return " ".join(str(item) for item in default)
    if isinstance(default, str) and os.sep in default:
        return Path(default).name  # a path in the repository is shown relative to it
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def help_problems(parser, name):
    problems = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
            continue
        label = f"{name} {'/'.join(action.option_strings) or action.dest}"
        if action.help == argparse.SUPPRESS:
            continue
        if not action.help:
            problems.append(f"{label}: no help text")
            continue
        text = parser._get_formatter()._expand_help(action)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction)):
            continue  # a flag: off unless given
        if action.required or (not action.option_strings and action.nargs in (None, "+")):
            continue  # must be given: no default
        if "default" not in text.lower():
            problems.append(f"{label}: its help does not state its default: {text!r}")
        elif shown_default(action.default) is not None and shown_default(action.default) not in text:
            problems.append(f"{label}: its help does not show its default {action.default!r}: {text!r}")
    return problems


@pytest.mark.parametrize("module_name", parser_modules())
def test_every_option_states_its_default(module_name, monkeypatch):
    parser = parser_of(module_name, monkeypatch)
    if parser.description == argparse.SUPPRESS:
        pytest.skip(f"{module_name} is internal: only the tools start it")
    problems = [problem for name, sub in every_parser(parser, parser.prog) for problem in help_problems(sub, name)]
    assert not problems, "\n".join(problems)


def test_the_entry_points_are_found():
    found = parser_modules()
    for name in ("grader", "kata.tools.train", "kata.tools.play", "kata.grading.gradescope", "kata.authoring.stubs",
                 "kata.student.notebook", "benchmarks.train_benchmark"):
        assert name in found, f"{name} should be among the parsers checked: {found}"


def test_a_missing_default_is_found():
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1, help="the rate (default: small)")
    parser.add_argument("--quiet", action="store_true", help="say less")
    assert help_problems(parser, "tool") == [
        "tool --epochs: its help does not state its default: 'passes over the data'",
        "tool --batch-size: no help text",
        "tool --lr: its help does not show its default 0.1: 'the rate (default: small)'"]


# ---------------------------------------------------------------- check_output

def test_check_output_accepts_a_new_file_in_folders_still_to_create(tmp_path):
    path = tmp_path / "a" / "b" / "out.json"
    assert check_output(path, "--json") == path
    assert list(tmp_path.iterdir()) == [], "nothing is created: no folder, no probe left behind"


def test_check_output_leaves_an_existing_output_as_it_was(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("earlier results\n")
    before = path.stat()
    check_output(path, "--json")
    assert path.read_text() == "earlier results\n" and path.stat().st_mtime_ns == before.st_mtime_ns
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("make, folder, says", [
    (lambda tmp: tmp, False, "it is a folder, and a file name is expected here"),
    (lambda tmp: tmp / "file", True, "it is a file, and a folder is expected here"),
    (lambda tmp: tmp / "file" / "out.json", False, "is a file, not a folder"),
    (lambda tmp: tmp / "file" / "deeper" / "plots", True, "is a file, not a folder"),
])
def test_check_output_refuses_a_path_of_the_wrong_kind(tmp_path, make, folder, says):
    (tmp_path / "file").write_text("a file\n")
    path = make(tmp_path)
    with pytest.raises(OutputPathError) as info:
        check_output(path, "--out", folder=folder)
    assert str(info.value).startswith(f"--out {path}: ") and says in str(info.value), str(info.value)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, where no one may create files")
def test_check_output_refuses_a_folder_it_cannot_write_in():
    with pytest.raises(OutputPathError) as info:
        check_output("/proc/kata-out/results.json", "--json")
    assert str(info.value).startswith("--json /proc/kata-out/results.json: cannot write in /proc (to create "
                                      "/proc/kata-out in it): "), str(info.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes in any folder")
def test_check_output_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputPathError) as info:
            check_output(folder / "model.npz", "--checkpoint")
        assert f"cannot write in {folder}: Permission denied" in str(info.value)
    finally:
        folder.chmod(0o700)


# ---------------------------------------------------------------- each tool checks its outputs first

def bad_paths(tmp_path):
    """A file where a folder should be, a folder where a file should be: refused for anyone, root included."""
    (tmp_path / "file").write_text("a file\n")
    return tmp_path / "file" / "out.json", tmp_path / "file"


def assert_one_line(proc, starts):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(starts), proc.stderr
    assert "Traceback" not in proc.stderr and "Grading" not in proc.stderr and "Training" not in proc.stdout


@pytest.mark.parametrize("arguments, option, kind", [
    (["--json", "{file}"], "--json", "file"),
    (["--gradescope", "{file}"], "--gradescope", "file"),
    (["batch", "{tmp}", "--out", "{folder}"], "--out", "folder"),
    (["package-gradescope", "--out", "{file}"], "--out", "file"),
    (["similarity", "{tmp}", "--out", "{file}"], "--out", "file"),
])
def test_grader_checks_its_outputs_before_grading(tmp_path, arguments, option, kind):
    bad_file, bad_folder = bad_paths(tmp_path)
    given = [a.format(file=bad_file, folder=bad_folder, tmp=tmp_path) for a in arguments]
    proc = subprocess.run([sys.executable, "grader.py", "--impl", "solutions", *given], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    path = bad_file if kind == "file" else bad_folder
    assert_one_line(proc, f"grader.py: {option} {path}: ")
    assert proc.stdout == ""
    assert not (tmp_path / "grades.csv").exists()


@pytest.mark.parametrize("option, kind", [("--checkpoint", "file"), ("--metrics-json", "file"), ("--plots", "folder")])
def test_train_checks_its_outputs_before_training(tmp_path, option, kind):
    bad_file, bad_folder = bad_paths(tmp_path)
    path = bad_file if kind == "file" else bad_folder
    proc = subprocess.run([sys.executable, "train.py", "--impl", "solutions", "--size", "small", "--epochs", "1",
                           "--no-progress", option, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_line(proc, f"train.py: {option} {path}: ")
    assert proc.stdout == ""


def test_the_autograder_and_the_stubs_check_their_outputs_first(tmp_path, capsys):
    from kata.authoring import stubs
    from kata.grading import gradescope

    bad_file, bad_folder = bad_paths(tmp_path)
    assert gradescope.main([str(tmp_path), str(bad_file)]) == gradescope.MISCONFIGURED
    assert capsys.readouterr().out.startswith(f"the autograder is misconfigured: results {bad_file}: ")
    assert stubs.main(["--out", str(bad_folder)]) == 2
    assert capsys.readouterr().err == (f"python -m kata.authoring.stubs: --out {bad_folder}: it is a file, and a "
                                       f"folder is expected here\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ---------------------------------------------------------------- no output over a student's work

@pytest.mark.parametrize("arguments, option, target", [
    (["--lesson", "00", "--json", "{root}/exercises/attention.py"], "--json", "exercises/attention.py"),
    (["--lesson", "00", "--gradescope", "{root}/exercises/attention.py"], "--gradescope", "exercises/attention.py"),
    (["--lesson", "00", "--json", "{root}/notebooks/02_attention.ipynb"], "--json", "notebooks/02_attention.ipynb"),
    (["package-gradescope", "--out", "{root}/exercises/attention.py"], "--out", "exercises/attention.py"),
    (["--lesson", "00", "--json", "{student}"], "--json", "my_code.py"),
    (["--lesson", "00", "--json", ""], "--json", ""),
])
def test_the_grader_writes_no_output_over_a_students_file(tmp_path, arguments, option, target):
    """A reviewer pointed --json, --gradescope and --out at exercises/ and notebooks/: the files were replaced.
    Now: refused in one line, the file untouched; an existing file of another kind (a student's code) too."""
    student = tmp_path / "my_code.py"
    student.write_text("def mine():\n    return 42\n")
    before = {path: path.read_bytes() for path in [student, ROOT / "exercises" / "attention.py",
                                                     ROOT / "notebooks" / "02_attention.ipynb"]}
    given = [a.format(root=ROOT, student=student) for a in arguments]
    proc = subprocess.run([sys.executable, "grader.py", *given], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert_one_line(proc, f"grader.py: {option}")
    assert proc.stdout == ""
    assert {path: path.read_bytes() for path in before} == before


@pytest.mark.parametrize("option, path", [
    ("--checkpoint", "exercises/model.py"), ("--metrics-json", "exercises/embedding.py"),
    ("--checkpoint", "checkpoints/pretrained.npz"), ("--plots", "lessons"), ("--checkpoint", ""),
])
def test_train_writes_no_output_over_the_katas_files(option, path):
    existing = ROOT / path if path else None
    before = existing.read_bytes() if existing and existing.is_file() else None
    proc = subprocess.run([sys.executable, "train.py", "--impl", "solutions", "--size", "small", "--epochs", "1",
                           "--no-progress", option, str(ROOT / path) if path else ""], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert_one_line(proc, f"train.py: {option}")
    if before is not None:
        assert existing.read_bytes() == before


def test_an_existing_output_of_the_same_kind_may_be_replaced(tmp_path):
    (tmp_path / "old.json").write_text('{"score": 1}\n')
    (tmp_path / "old.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    assert check_output(tmp_path / "old.json", "--json", kind="json") == tmp_path / "old.json"
    assert check_output(tmp_path / "old.zip", "--out", kind="zip") == tmp_path / "old.zip"
    with pytest.raises(OutputPathError, match="not a JSON file"):
        check_output(tmp_path / "old.zip", "--json", kind="json")
    (tmp_path / "old.html").write_bytes(b"\xef\xbb\xbf\n<!doctype HTML>\n<html><body>report</body></html>\n")
    assert check_output(tmp_path / "old.html", "--out", kind="html") == tmp_path / "old.html"
    with pytest.raises(OutputPathError, match="not an HTML page"):
        check_output(tmp_path / "old.json", "--out", kind="html")


def test_a_large_json_output_may_be_replaced(tmp_path):
    """Judged whole: a JSON file over a mebibyte is JSON (a cut prefix of it would not parse)."""
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"rows": ["x" * 100] * 20_000}))
    assert path.stat().st_size > 1 << 20
    assert check_output(path, "--json", kind="json") == path
