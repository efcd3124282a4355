"""Ctrl-C (SIGINT) while an exercise loops forever: grading, watching and a notebook's check stop with exit status
130 (a KeyboardInterrupt in the notebook), one line saying what was interrupted, and no process left behind.

The test process of a lesson runs in a session of its own, so the terminal's SIGINT never reaches it: the grader
must kill it, and start nothing after. Every process a test starts carries a marker in its environment, which its
children inherit: none may remain. No timing is asserted (the deadlines are bounds for a loaded machine);
benchmarks/interrupt_benchmark.py measures how long the stop takes.
"""

import subprocess

import pytest

from meta.helpers import interrupt_grader, kernel_checking, looping_copy, marked_processes, reply_to, wait_for

pytestmark = pytest.mark.meta
SECONDS = 60.0  # bounds for a loaded machine, not measures


@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    return looping_copy(tmp_path_factory.mktemp("interrupt") / "kata")


def interrupted(folder, *args, stdin=subprocess.DEVNULL, lesson_id="02"):
    """grader.py ARGS interrupted once a test of lesson_id (None: any) runs: (exit status, stdout, stderr,
    processes of the grading left after it ended)."""
    return interrupt_grader(folder, args, stdin, lesson_id, SECONDS)[:4]


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
    pytest.importorskip("jupyter_client.manager")
    pytest.importorskip("ipykernel")
    with kernel_checking(looping, "02", SECONDS) as (manager, client, request, marker, kernel):
        manager.interrupt_kernel()
        reply = reply_to(client, request, SECONDS)
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
