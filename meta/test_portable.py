"""The student's loop without what only POSIX offers, as on Windows (there is no Windows machine to try it on).

Every Python started here has meta/portable/ on PYTHONPATH: its sitecustomize removes, before anything runs, the
POSIX-only parts of os, signal and the standard library (process groups, users, fork, SIGKILL, alarm, resource,
fcntl, termios, pwd, grp, readline), refuses preexec_fn and start_new_session as Windows does or ignores them, and
makes output to a pipe cp1252, as Windows writes it. The grader, its commands, pytest, train.py, play.py and a
notebook's check must work with it, the sandbox must refuse in one line, and Ctrl-C must still kill the test
process. What this does not show (Windows' own calls, paths, the console) is listed in the shim's docstring and
the README ("Windows and macOS").
"""

import ast
import os
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

from kata.course.exercises import generate
from kata.course.manifest import lessons
from kata.course.repository import ROOT
from meta.helpers import copy_of_repository, insert_first, marked_processes, wait_for

pytestmark = pytest.mark.meta
SHIM = ROOT / "meta" / "portable"
SECONDS = 300  # a bound for a slow machine, not a measure


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A student's copy of the repository (exercises/ the stubs)."""
    return copy_of_repository(tmp_path_factory.mktemp("portable") / "kata")


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONUTF8", "PYTHONIOENCODING")}
    return dict(env, PYTHONPATH=str(SHIM), **extra)


def run(folder, *args, stdin="", **extra):
    """python ARGS in folder with the shim; the CompletedProcess (text)."""
    return subprocess.run([sys.executable, *args], cwd=folder, env=environment(**extra), input=stdin,
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=SECONDS)


def test_the_shim_takes_away_what_windows_lacks(student):
    probe = ("import os, signal, subprocess, sys\n"
             "from kata.course import children\n"
             "gone = [n for n in ('killpg', 'setsid', 'getpgid', 'getuid', 'geteuid', 'fork') if hasattr(os, n)]\n"
             "gone += [n for n in ('SIGKILL', 'SIGALRM', 'SIGUSR1', 'alarm', 'setitimer') if hasattr(signal, n)]\n"
             "refused = []\n"
             "for name in ('resource', 'fcntl', 'termios', 'pwd', 'grp', 'readline'):\n"
             "    try:\n        __import__(name)\n    except ModuleNotFoundError:\n        refused.append(name)\n"
             "for options in ({'preexec_fn': lambda: None}, {'start_new_session': True}):\n"
             "    try:\n        subprocess.run([sys.executable, '-c', ''], **options)\n"
             "    except ValueError:\n        refused.append(next(iter(options)))\n"
             "print(gone, refused, children.POSIX, sys.stdout.encoding)\n")
    result = run(student, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "['resource',", "'fcntl',", "'termios',", "'pwd',", "'grp',",
                                     "'readline',", "'preexec_fn',", "'start_new_session']", "False", "cp1252"]


def test_the_grader_and_its_commands(student):
    status = run(student, "grader.py", "status")
    total = sum(item.points for item in lessons())
    assert status.returncode == 0 and f"0/{total}" in status.stdout, status.stdout + status.stderr
    for impl, marks in (("exercises", ("0/5", "0/12")), ("solutions", ("5/5", "12/12"))):
        graded = run(student, "grader.py", "--impl", impl, "--lesson", "00", "--lesson", "03")
        assert graded.returncode == 0, graded.stderr
        points = {line[:2]: [word for word in line.split() if "/" in word][-1]
                  for line in graded.stdout.splitlines() if line[:2] in ("00", "03")}
        assert (points["00"], points["03"]) == marks, graded.stdout
    as_json = run(student, "grader.py", "--lesson", "00", "--json", "out.json")
    assert as_json.returncode == 0 and (student / "out.json").is_file(), as_json.stderr
    hint = run(student, "grader.py", "hint", "03")
    assert hint.returncode == 0 and "level 1 of 3" in hint.stdout, hint.stdout + hint.stderr
    watched = run(student, "grader.py", "watch", "--lesson", "00")  # stdin ends at once: one run
    assert watched.returncode == 0 and "Lesson 00" in watched.stdout, watched.stdout + watched.stderr
    text = generate()["layers.py"] + "\n# my own work: \u00e9t\u00e9 \u2192 kept\n"  # not ASCII
    (student / "exercises" / "layers.py").write_text(text, encoding="utf-8")
    reset = run(student, "grader.py", "reset", "03")
    assert reset.returncode == 0 and "kept in" in reset.stdout, reset.stdout + reset.stderr
    backups = list((student / ".kata" / "backup").rglob("layers.py"))
    assert [path.read_text(encoding="utf-8") for path in backups] == [text]
    assert (student / "exercises" / "layers.py").read_text(encoding="utf-8") == generate()["layers.py"]
    for output in (status, graded, hint, watched, reset):
        assert "Traceback" not in output.stderr, output.stderr


def test_pytest_on_a_lesson(student):
    passed = run(student, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "lesson03", "--impl", "solutions")
    assert passed.returncode == 0 and "28 passed" in passed.stdout, passed.stdout + passed.stderr
    stubs = run(student, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-m", "lesson03", "--impl",
                "exercises")
    assert stubs.returncode == 1 and "NotImplementedError" in stubs.stdout, stubs.stdout + stubs.stderr


def test_train_and_play(student, tmp_path):
    trained = run(student, "train.py", "--impl", "solutions", "--size", "small", "--epochs", "1",
                  "--checkpoint", str(tmp_path / "model.npz"))
    assert trained.returncode == 0 and (tmp_path / "model.npz").is_file(), trained.stdout + trained.stderr
    played = run(student, "play.py", stdin="Max ( 5 3 9 )\n")
    assert played.returncode == 0 and "answer: 9" in played.stdout, played.stdout + played.stderr
    assert "UnicodeEncodeError" not in played.stdout  # the heatmap's shades, on a cp1252 pipe


def test_a_notebooks_check(student):
    checked = run(student, "-c", "from kata.student import notebook; notebook.check('00', spec='solutions')")
    assert checked.returncode == 0 and "36/36 tests passed" in checked.stdout, checked.stdout + checked.stderr


def test_the_sandbox_says_in_one_line_that_it_cannot_run_here(student, tmp_path):
    (tmp_path / "alice").mkdir()
    for args in (["grader.py", "--impl", "solutions", "--sandbox", "--lesson", "00"],
                 ["grader.py", "--impl", str(student / "solutions"), "--lesson", "00"],
                 ["grader.py", "batch", str(tmp_path), "--out", str(tmp_path / "grades")]):
        refused = run(student, *args)
        said = [line for line in refused.stderr.splitlines() if line.startswith("grader.py:")]
        assert refused.returncode == 2 and len(said) == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "the sandbox needs" in said[0] and "Linux" in said[0], said
    pytest_run = run(student, "-m", "pytest", "-q", "-m", "lesson00", "--impl", "solutions", "--sandbox")
    assert pytest_run.returncode == 4 and "--sandbox: the sandbox needs" in pytest_run.stderr, pytest_run.stderr


def test_ctrl_c_kills_the_test_process_without_process_groups(student):
    """Without killpg, the test process shares the grader's group and is killed alone (Windows: with taskkill /T
    for its tree, which Linux cannot run)."""
    copy = student.parent / "looping"
    shutil.copytree(student, copy, ignore=shutil.ignore_patterns(".kata"))
    insert_first(copy / "exercises" / "attention.py", "softmax", "while True: pass")
    marker = uuid.uuid4().hex
    grader = subprocess.Popen([sys.executable, "grader.py", "--lesson", "02"], cwd=copy, text=True,
                              env=environment(KATA_TEST_MARK=marker), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: running_lesson(marker, "02"), 60), "the test process never started"
        grader.send_signal(signal.SIGINT)
        out, err = grader.communicate(timeout=60)
        assert grader.returncode == 130 and "Interrupted: lesson 02 was being graded" in err, (out, err)
        assert "Traceback" not in err, err
        assert wait_for(lambda: not marked_processes(marker), 30), f"left running: {marked_processes(marker)}"
    finally:
        grader.kill()
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)


def running_lesson(marker, lesson_id):
    """Whether a test process of lesson_id (pytest -m lessonNN) runs among the marked processes."""
    for pid in marked_processes(marker):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                if f"lesson{lesson_id}".encode() in stream.read().split(b"\0"):
                    return True
        except OSError:
            pass
    return False


# ---------------------------------------------------------------- text files are UTF-8 on every platform

SOURCES = ["grader.py", "train.py", "play.py", "kata", "tests", "meta/helpers.py", "meta/portable"]
KERNEL_FILES = ["kata/sandbox/processes.py"]  # reads and writes only Linux's own files (/proc, cgroups): ASCII


def _text_calls_without_encoding(path):
    """(line, call) of every open()/read_text()/write_text()/Path.open()/TemporaryFile() in text mode with no
    encoding: on Windows they would use the ANSI code page (cp1252), and the lesson texts are not ASCII."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or any(k.arg in ("encoding", None) for k in node.keywords):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        mode_index = {"open": 1, "TemporaryFile": 0, "NamedTemporaryFile": 0}.get(name)
        if isinstance(func, ast.Attribute) and name == "open":
            mode_index = 0 if not (isinstance(func.value, ast.Name) and func.value.id in ("os", "io")) else None
        mode = next((k.value for k in node.keywords if k.arg == "mode"), None)
        if mode is None and mode_index is not None and len(node.args) > mode_index:
            mode = node.args[mode_index]
        text = mode.value if isinstance(mode, ast.Constant) else ("w+b" if name.endswith("TemporaryFile") else "r")
        if name in ("read_text", "write_text") or (mode_index is not None and "b" not in str(text)):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}()")
    return found


def test_every_text_file_is_read_and_written_as_utf8():
    paths = [p for s in SOURCES for p in ([ROOT / s] if s.endswith(".py") else sorted((ROOT / s).rglob("*.py")))
             if str(p.relative_to(ROOT)) not in KERNEL_FILES]
    missing = [call for path in paths for call in _text_calls_without_encoding(path)]
    assert not missing, "text files opened without encoding=\"utf-8\":\n" + "\n".join(missing)
