"""Ctrl-C (SIGINT) while an exercise loops forever: grading, watching and a notebook's check stop with exit status
130 (a KeyboardInterrupt in the notebook), one line saying what was interrupted, and no process left behind.

The test process of a lesson runs in a session of its own, so the terminal's SIGINT never reaches it: the grader
must kill it, and start nothing after. Every process a test starts carries a marker in its environment, which its
children inherit: none may remain. No timing is asserted (the deadlines are bounds for a loaded machine);
benchmarks/interrupt_benchmark.py measures how long the stop takes.
"""

import os
import signal
import subprocess
import sys
import uuid

import pytest

from meta.helpers import copy_of_repository, insert_first, marked_processes, wait_for

pytestmark = pytest.mark.meta
SECONDS = 60.0  # bounds for a loaded machine, not measures


@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    """A student's copy whose softmax (lesson 02's first exercise) loops forever; .kata/ already holds the
    reference's test ids, so a grading goes straight to the lesson's tests."""
    folder = copy_of_repository(tmp_path_factory.mktemp("interrupt") / "kata")
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


def interrupted(folder, *args, stdin=subprocess.DEVNULL, lesson_id="02"):
    """Start grader.py ARGS, SIGINT it once a test of lesson_id (None: any) runs; (exit status, stdout, stderr,
    processes of the grading left after it ended)."""
    marker = uuid.uuid4().hex
    grader = subprocess.Popen([sys.executable, "grader.py", *args], cwd=folder, stdin=stdin, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                              env=dict(os.environ, KATA_TEST_MARK=marker))
    try:
        assert wait_for(lambda: in_test(marker, lesson_id), SECONDS), f"no test of lesson {lesson_id} started"
        grader.send_signal(signal.SIGINT)
        out, err = grader.communicate(timeout=SECONDS)
        wait_for(lambda: not marked_processes(marker), SECONDS)
        return grader.returncode, out, err, marked_processes(marker)
    finally:
        grader.kill()
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_stops_grading_a_lesson(looping):
    code, out, err, left = interrupted(looping, "--lesson", "02")
    assert code == 130 and not left, (code, out, err, left)
    lines = [line for line in err.splitlines() if line.startswith("Interrupted")]
    assert lines == ["Interrupted: lesson 02 was being graded (test_softmax_by_hand running); nothing was kept "
                     "(no report, no file written)"], err
    assert "Traceback" not in err and "points" not in out, (out, err)


def test_ctrl_c_stops_grading_every_lesson_and_says_what_had_finished(looping):
    code, out, err, left = interrupted(looping, lesson_id=None)
    assert code == 130 and not left, (code, out, err, left)
    line = next(line for line in err.splitlines() if line.startswith("Interrupted"))
    assert line.startswith("Interrupted: lesson") and " being graded (" in line, line
    assert line.endswith("had not started; nothing was kept (no report, no file written)"), line


def test_ctrl_c_stops_watch(looping):
    code, out, err, left = interrupted(looping, "watch", "--lesson", "02", stdin=subprocess.PIPE)
    assert code == 130 and not left, (code, out, err, left)
    assert [line for line in err.splitlines() if line.startswith("Interrupted")] == [
        "Interrupted: lesson 02 was being graded (test_softmax_by_hand running); nothing was kept (no report, no "
        "file written); stopped watching exercises/"], err


def test_interrupt_kernel_stops_a_notebooks_check(looping):
    """Jupyter's "Interrupt kernel" (SIGINT to the kernel) during notebook.check: the cell ends with the line, no
    test process is left, and the next check runs."""
    manager_module = pytest.importorskip("jupyter_client.manager")
    pytest.importorskip("ipykernel")
    marker = uuid.uuid4().hex
    manager = manager_module.KernelManager(kernel_name="python3")
    manager.kernel_spec.argv[0] = sys.executable  # this environment's Python, whatever the spec names
    manager.start_kernel(cwd=str(looping), env=dict(os.environ, KATA_TEST_MARK=marker, PYTHONPATH=str(looping)))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=SECONDS)
        kernel = set(marked_processes(marker))
        request = client.execute("from kata.student import notebook\nnotebook.check('02')")
        assert wait_for(lambda: in_test(marker, "02"), SECONDS), "no test of lesson 02 started"
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=SECONDS)
        while reply["parent_header"].get("msg_id") != request:  # (the replies to wait_for_ready's requests)
            reply = client.get_shell_msg(timeout=SECONDS)
        assert reply["content"]["status"] == "error", reply
        said = []
        while True:
            message = client.get_iopub_msg(timeout=SECONDS)
            said.append(message["content"].get("text", "") + " ".join(message["content"].get("traceback", [])))
            if message["parent_header"].get("msg_id") == request and message["msg_type"] == "status" \
                    and message["content"]["execution_state"] == "idle":
                break
        assert any("Interrupted: lesson 02 was being graded" in text for text in said), said
        assert wait_for(lambda: set(marked_processes(marker)) <= kernel, SECONDS), marked_processes(marker)
        again = client.execute_interactive("notebook.check('00', spec='solutions')", timeout=300,
                                           output_hook=lambda message: said.append(  # printed, or shown (the table)
                                               message["content"].get("text")
                                               or message["content"].get("data", {}).get("text/plain", "")))
        assert again["content"]["status"] == "ok" and any("36/36 tests passed" in text for text in said), said
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)
