"""What the repository's own tests share: the pristine stubs and a student's copy of the repository, made fresh
in a temporary folder, so that every test holds whatever state a student has left exercises/ in."""

import ast
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from kata.course.exercises import generate
from kata.course.repository import ROOT

STUDENT_FILES = ["grader.py", "train.py", "play.py", "manifest.toml", "pyproject.toml"]
STUDENT_DIRS = ["kata", "tests", "solutions", "lessons", "checkpoints"]


def write_stubs(folder):
    """folder (created) holding exercises/ as it is generated from solutions/: every stub unfinished."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def copy_of_repository(target):
    """A copy of the repository as a student first has it (exercises/ the pristine stubs), without .git or .venv;
    its grader.py, run with this Python, grades it with its own kata/ and keeps its state in its own .kata/."""
    target = Path(target)
    target.mkdir(parents=True)
    for name in STUDENT_FILES:
        shutil.copy2(ROOT / name, target / name)
    for name in STUDENT_DIRS:
        shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    write_stubs(target / "exercises")
    return target


def insert_first(path, qualname, line):
    """Insert line as the first statement of the function or method qualname ("name" or "Class.name") in path;
    return its line number."""
    source = path.read_text(encoding="utf-8")
    *owner, name = qualname.split(".")
    body = ast.parse(source).body
    if owner:
        body = next(c for c in body if isinstance(c, ast.ClassDef) and c.name == owner[0]).body
    node = next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == name)
    first = node.body[1] if isinstance(node.body[0], ast.Expr) else node.body[0]  # after the docstring
    lines = source.splitlines(keepends=True)
    lines.insert(first.lineno - 1, " " * first.col_offset + line + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return first.lineno


def alive(pid):
    """Whether the process pid exists and is not a zombie (dead, waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_for(condition, limit=30.0):
    """Whether condition() becomes true within limit seconds (a bound for a slow machine, not a measure)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def marked_processes(marker, variable="KATA_TEST_MARK"):
    """The pids of the live processes whose environment holds variable=marker (what a test started, and all they
    started in turn: children inherit the environment)."""
    wanted, found = f"{variable}={marker}".encode(), []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/environ", "rb") as stream:
                if wanted in stream.read().split(b"\0") and alive(int(entry)):
                    found.append(int(entry))
        except OSError:
            pass
    return found


# ---------------------------------------------------------------- Ctrl-C while an exercise loops forever
# (meta/test_interrupt.py asserts what happens; benchmarks/interrupt_benchmark.py measures how long it takes)

def looping_copy(target):
    """A student's copy whose softmax (lesson 02's first exercise) loops forever; its .kata/ already holds the
    reference's test ids, so a grading goes straight to the lesson's tests."""
    folder = copy_of_repository(target)
    insert_first(folder / "exercises" / "attention.py", "softmax", "while True: pass")
    subprocess.run([sys.executable, "grader.py", "--lesson", "00"], cwd=folder, capture_output=True, check=True,
                   timeout=300)
    return folder


def in_test(marker, lesson_id=None):
    """Whether a test of lesson_id (None: of any lesson) has started in a marked test process (its log says so)."""
    for pid in marked_processes(marker):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                args = stream.read().split(b"\0")
        except OSError:
            continue
        run = next((a.split(b"=", 1)[1] for a in args if a.startswith(b"--kata-run=")), None)
        wanted = lesson_id is None or f"lesson{lesson_id}".encode() in args
        if wanted and run is not None and b"--collect-only" not in args:
            log = run.decode().replace(".json", ".log")
            try:
                with open(log, encoding="utf-8") as stream:
                    if '"start"' in stream.read():
                        return True
            except OSError:
                pass
    return False


def interrupt_grader(folder, args, stdin=subprocess.DEVNULL, lesson_id="02", limit=60.0):
    """Start grader.py ARGS in folder (its processes marked), SIGINT it once a test of lesson_id (None: any) runs.
    -> (exit status, stdout, stderr, pids of the grading left once it ended, seconds from SIGINT to its end)"""
    marker = uuid.uuid4().hex
    grader = subprocess.Popen([sys.executable, "grader.py", *args], cwd=folder, stdin=stdin, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                              env=dict(os.environ, KATA_TEST_MARK=marker))
    try:
        if not wait_for(lambda: in_test(marker, lesson_id), limit):
            raise AssertionError(f"no test of lesson {lesson_id} started")
        start = time.monotonic()
        grader.send_signal(signal.SIGINT)
        out, err = grader.communicate(timeout=limit)
        seconds = time.monotonic() - start
        wait_for(lambda: not marked_processes(marker), limit)
        return grader.returncode, out, err, marked_processes(marker), seconds
    finally:
        grader.kill()
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def kernel_checking(folder, lesson_id="02", limit=60.0):
    """A Jupyter kernel of this Python in folder (its processes marked) running notebook.check(lesson_id), yielded
    once a test of that lesson runs: (manager, client, the request's id, the marker, the kernel's own pids). The
    kernel and every marked process are gone afterwards."""
    from jupyter_client.manager import KernelManager
    marker = uuid.uuid4().hex
    manager = KernelManager(kernel_name="python3")
    manager.kernel_spec.argv[0] = sys.executable  # this environment's Python, whatever the spec names
    manager.start_kernel(cwd=str(folder), env=dict(os.environ, KATA_TEST_MARK=marker, PYTHONPATH=str(folder)))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=limit)
        kernel = set(marked_processes(marker))
        request = client.execute(f"from kata.student import notebook\nnotebook.check({lesson_id!r})")
        if not wait_for(lambda: in_test(marker, lesson_id), limit):
            raise AssertionError(f"no test of lesson {lesson_id} started")
        yield manager, client, request, marker, kernel
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)


def reply_to(client, request, limit=60.0):
    """The shell reply to request (the replies to wait_for_ready's own requests come first, and are skipped)."""
    reply = client.get_shell_msg(timeout=limit)
    while reply["parent_header"].get("msg_id") != request:
        reply = client.get_shell_msg(timeout=limit)
    return reply
