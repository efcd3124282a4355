"""Tests of kata/sandbox/'s protocol: what may cross between the tests and a sandboxed implementation, and
the semantics the lesson tests rely on (the whole lesson suite through it: meta/test_grader.py)."""

import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kata.course.places import Place
from kata.course.repository import ROOT
from kata.sandbox import CallTimeout, Policy, RemoteError, Sandbox, SandboxError, array_bytes, read_array
from kata.sandbox.processes import children_of, sweep_cgroups, sweep_uids
from kata.testing.sandboxed import policy
from meta.helpers import alive, wait_for

pytestmark = pytest.mark.meta
POLICY = policy(allow_unconfined=True)  # the code these tests run is trusted


@pytest.mark.parametrize("array", [
    np.zeros(()), np.arange(6.0).reshape(2, 3), np.arange(6).reshape(2, 3).T, np.asfortranarray(np.ones((3, 4))),
    np.array([True, False]), np.zeros((0, 5)), np.arange(3, dtype=np.uint8), np.ones(2, np.float32),
    np.ones(1, ">f8"), np.arange(12, dtype=np.int16).reshape(2, 2, 3)[:, :, ::2]],
    ids=["0-d", "2-d", "transposed", "fortran", "bool", "empty", "uint8", "float32", "big-endian", "strided"])
def test_arrays_cross_whole_and_writable(array):
    back = read_array(array_bytes(array))
    assert type(back) is np.ndarray and back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def npy(header, data=b"", version=b"\x01\x00"):
    text = header.encode()
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY" + version + len(text).to_bytes(2, "little") + text + data


@pytest.mark.parametrize("blob, says", [
    (npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8), "dtype"),
    (npy("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", b"\0" * 8), "dtype"),
    (npy("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", b"\0" * 12), "dtype"),
    (npy("{'descr': '<f1', 'fortran_order': False, 'shape': (1,), }", b"\0"), "dtype"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }"), "larger than allowed"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", b"\0" * 16), "malformed"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", b"\0" * 32), "malformed"),
    (npy("__import__('os').system('true')"), "malformed"),
    (b"\x93NUMPY\x01", "malformed"),
    (b"not an array at all", "malformed"),
], ids=["object", "structured", "unicode", "no-such-type", "huge", "short", "long", "code", "truncated", "junk"])
def test_anything_but_plain_numbers_is_refused_with_a_message(blob, says):
    with pytest.raises(SandboxError, match=says):
        read_array(blob)


def test_the_fast_reading_agrees_with_numpys():
    array = np.random.default_rng(0).normal(size=(4, 5))
    blob = array_bytes(array)
    assert blob[6:8] == b"\x01\x00", "numpy writes version 1.0 headers: the fast path must see them"
    np.testing.assert_array_equal(read_array(blob), np.lib.format.read_array(io.BytesIO(blob)))


@pytest.fixture(scope="module")
def box():
    with Sandbox(ROOT / "solutions", POLICY) as sandbox:
        yield sandbox


def test_objects_keep_identity_and_in_place_writes_cross_both_ways(box):
    impl = box.implementation()
    layer = impl.Linear(3, 2)
    weight = layer.W
    assert layer.get_parameters()[0][0] is weight, "the same array of the child must arrive as the same object"
    weight[0, 0] = 5.0  # the tests write into a parameter in place
    x = np.ones((1, 3))
    expected = x @ weight + layer.b
    np.testing.assert_allclose(layer.forward(x), expected)
    optimizer = impl.SGD(layer.get_parameters(), learning_rate=1.0)
    for _, grad in layer.get_parameters():
        grad[...] = 1.0
    before = weight.copy()
    optimizer.step()  # the child updates the parameter in place: the parent's array follows
    np.testing.assert_allclose(weight, before - 1.0)


def test_callbacks_and_errors_cross_as_data(box):
    impl = box.implementation()
    calls = []

    def square_sum(x):
        calls.append(1)
        return float(np.sum(x ** 2))

    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(impl.numerical_gradient(square_sum, x), 2 * x, rtol=1e-6)
    assert calls, "numerical_gradient must have called the parent's function back"
    with pytest.raises(ValueError):
        impl.tokenize("Avg ( 1 2 )")
    with pytest.raises(RemoteError):
        impl.numerical_gradient(lambda x: (_ for _ in ()).throw(SystemExit(3)), x)
    np.testing.assert_allclose(impl.numerical_gradient(square_sum, x), 2 * x, rtol=1e-6)  # still serving


def test_arrays_the_tests_let_go_of_stop_crossing_and_come_back_current(box):
    impl = box.implementation()
    layer = impl.Linear(4, 3)
    optimizer = impl.SGD(layer.get_parameters(), learning_rate=1.0)  # the list is let go of at once
    layer.forward(np.ones((2, 4)))  # its result is let go of at once too
    layer.zero_grad()  # the next message says so
    held = set(box.endpoint.mirrors.entries)
    assert not [key for key in held if key.startswith("c")], f"the child's arrays are still held here: {held}"
    weight = layer.W  # held from here on: it follows the child's in-place updates
    for _ in range(3):
        layer.backward(np.ones((2, 3)))
        optimizer.step()
        layer.zero_grad()
    np.testing.assert_allclose(layer.W, weight)  # the same values, whether the array is the same object or not
    assert layer.W is weight, "an array the tests hold must arrive as the same object"
    before = weight.copy()
    del weight
    layer.backward(np.ones((2, 3)))
    optimizer.step()
    np.testing.assert_allclose(layer.W, before - 2.0)  # shared anew after being let go: current values


def test_a_policy_crosses_a_process_boundary_as_json():
    chosen = Policy(hidden=("/somewhere/solutions", "/somewhere/tests"), max_pids=7, namespaces=False)
    assert Policy.from_json(json.loads(json.dumps(chosen.to_json()))) == chosen
    assert Policy.from_json(json.loads(json.dumps(POLICY.to_json()))) == POLICY


def test_a_test_that_loops_times_out_naming_where_it_was_running(tmp_path):
    from meta.test_adversarial import ATTACKS, build
    loop = next(attack for attack in ATTACKS if attack.id == "loop-in-backward")
    # without its first line, which ignores SIGUSR1: the signal on which the child says where it is
    folder = build(dataclasses.replace(loop, backward=loop.backward[1:]), tmp_path / "submission")
    line = next(number for number, text in enumerate((folder / "loss.py").read_text().splitlines(), 1)
                if loop.backward[1] in text)
    with Sandbox(folder, POLICY, startup_seconds=30.0) as looping:
        loss = looping.implementation().CrossEntropyLoss()
        loss.forward(np.zeros((6, 20)), np.zeros(6, dtype=int))
        looping.set_deadline(1.0)
        with pytest.raises(CallTimeout) as timed_out:
            loss.backward()
    assert timed_out.value.place == Place(str(folder.resolve() / "loss.py"), line, "backward")
    assert str(timed_out.value) == (f"the implementation did not answer before the deadline: it was running "
                                    f"{folder.resolve() / 'loss.py'} line {line} (backward)")


def test_an_error_of_the_child_carries_its_message_and_place_as_fields(box):
    with pytest.raises(ValueError) as raised:
        box.implementation().tokenize("Avg ( 1 2 )")
    place = raised.value.remote_place
    assert Path(place.file).parent == ROOT / "solutions" and place.line > 0
    assert str(raised.value) == f"{raised.value.remote_message} (raised at {place.file}:{place.line})"


HOLDER = """import sys, time
from kata.sandbox import Sandbox
from kata.testing.sandboxed import policy
box = Sandbox(sys.argv[1], policy(allow_unconfined=True)).start()
print("namespaces" if box.isolated else "none", box.process.pid, box.cgroup or "-", flush=True)
box.implementation().spin()  # the child is busy, not reading the socket, when this process is killed
"""


@pytest.mark.parametrize("namespaces", ["1", "0"], ids=["namespaces", "no-namespaces"])
def test_nothing_the_child_started_outlives_the_process_holding_the_sandbox(tmp_path, namespaces):
    """The process holding a sandbox is killed outright (SIGKILL: no stop(), no clean-up at all) while the child is
    busy in a call (so it never reads the end of the socket): the child, the waiter of its namespaces and a daemon
    the implementation started at import (double fork, setsid, environment cleared) die too, at once with
    namespaces (the daemon is in the child's PID namespace), else when the next sandbox starts (its sweep kills
    what the cgroups or the uid of a dead holder still hold)."""
    from meta.test_adversarial import survivors
    mark = f"kata-survivor-{tmp_path.name}"
    folder = shutil.copytree(ROOT / "solutions", tmp_path / "submission", ignore=shutil.ignore_patterns("__pycache__"))
    with open(folder / "__init__.py", "a") as stream:
        stream.write(f"\nimport os as _os, sys as _sys\nif _os.fork() == 0:\n    _os.setsid()\n"
                     f"    if _os.fork() == 0:\n        _os.execve(_sys.executable, [_sys.executable, '-c', "
                     f"'import time; time.sleep(600)', {mark!r}], {{}})\n    _os._exit(0)\n"
                     "\ndef spin():\n    while True:\n        pass\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, start_new_session=True,
                              env=dict(os.environ, KATA_SANDBOX_NAMESPACES=namespaces))
    waiter = None
    try:
        confined, waiter, cgroup = holder.stdout.readline().split()
        if (confined == "namespaces") != (namespaces == "1"):
            pytest.skip(f"no {'namespaces' if namespaces == '1' else 'way to turn them off'} here")
        if confined != "namespaces" and os.geteuid() != 0:
            pytest.skip("without namespaces only root holds the child's processes in cgroups or a uid of its own")
        assert wait_for(lambda: survivors(mark)), "the implementation's daemon should be running before the kill"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        if confined != "namespaces":  # what the next sandbox does first
            sweep_cgroups()
            sweep_uids()
        assert wait_for(lambda: not survivors(mark)), f"processes outlived the sandbox's holder: {survivors(mark)}"
        assert wait_for(lambda: not alive(int(waiter))), "the child (or its namespaces' waiter) outlived its holder"
        if cgroup != "-":  # its cgroups, left empty, go when the next sandbox makes one
            sweep_cgroups()
            assert not Path(cgroup).exists(), f"the cgroup of a dead holder was left behind: {cgroup}"
    finally:  # should this fail, nothing of it keeps running
        if holder.poll() is None:
            holder.kill()
        for pid in [*survivors(mark), *([*children_of(int(waiter)), int(waiter)] if waiter else [])]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_a_header_nested_past_pythons_stack_is_the_sandboxs_own_error():
    """JSON nested deeper than the parser can follow is refused as a SandboxError, never a RecursionError."""
    import socket
    import struct

    from kata.sandbox.wire import Channel
    ours, theirs = socket.socketpair()
    try:
        header = b"[" * 200_000 + b"]" * 200_000
        theirs.sendall(struct.pack("!Q", len(header)))
        sender = __import__("threading").Thread(target=theirs.sendall, args=(header,))
        sender.start()
        with pytest.raises(SandboxError, match="malformed message"):
            Channel(ours).recv()
        sender.join()
    finally:
        ours.close()
        theirs.close()


SPENDER = """
import os as _os, time as _time

def fill_tmp():
    '''Folders made in /tmp until the file system refuses one.'''
    made = 0
    try:
        while made < 100_000:
            _os.mkdir(f"/tmp/d{made}")
            made += 1
    except OSError:
        pass
    return made

def spin(count):
    '''count processes, each in a session of its own, spinning for ever; their pids.'''
    pids = []
    for _ in range(count):
        pid = _os.fork()
        if pid == 0:
            _os.setsid()
            while True:
                pass
        pids.append(pid)
    return pids
"""


@pytest.fixture
def spender(tmp_path):
    folder = shutil.copytree(ROOT / "solutions", tmp_path / "submission", ignore=shutil.ignore_patterns("__pycache__"))
    with open(folder / "__init__.py", "a") as stream:
        stream.write(SPENDER)
    with Sandbox(folder, policy(allow_unconfined=True)) as box:
        yield box


def test_the_child_makes_no_more_files_than_its_tmp_allows(spender):
    """Every inode of a tmpfs costs kernel memory its size does not count: /tmp holds at most Policy.tmp_inodes."""
    if not spender.isolated:
        pytest.skip("without namespaces the child has no /tmp of its own (its files are removed at stop)")
    made = spender.implementation().fill_tmp()
    assert 0 < made < Policy(hidden=()).tmp_inodes


def test_the_child_and_all_it_starts_share_one_cpu_quota(spender):
    """Processes in sessions of their own stay in the child's cpu cgroup: together they get Policy.cpus CPUs."""
    if spender.cgroup is None or "cpu" not in spender.cgroup.paths:
        pytest.skip("no cpu cgroup here (root and cgroup v1 only)")
    cpu = spender.cgroup.paths["cpu"]
    quota, period = (int((cpu / name).read_text()) for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
    assert quota == period * Policy(hidden=()).cpus
    spender.implementation().spin(4)
    assert len(spender.cgroup.members()) >= 5  # the child (and its waiter) and the spinners
    assert set(spender.cgroup.members()) == set(int(p) for p in (cpu / "cgroup.procs").read_text().split())
    spender.stop()
    assert not cpu.exists()


def test_a_hidden_file_reads_empty(tmp_path, request):
    """A hidden path may be a file (.git is one in a worktree of git's): with namespaces the child reads it empty."""
    secret = ROOT / ".kata" / f"secret-{tmp_path.name}.txt"  # (not under /tmp: the child's /tmp is a new one)
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("the answer")
    request.addfinalizer(secret.unlink)
    folder = shutil.copytree(ROOT / "solutions", tmp_path / "submission", ignore=shutil.ignore_patterns("__pycache__"))
    with open(folder / "__init__.py", "a") as stream:
        stream.write(f"\ndef peek():\n    return open({str(secret)!r}).read()\n")
    with Sandbox(ROOT / "solutions", policy(allow_unconfined=True)) as plain:
        if not plain.isolated:
            pytest.skip("no namespaces here")
    with Sandbox(folder, Policy(hidden=(str(secret),), allow_unconfined=True)) as box:
        assert box.isolated, box.isolation_note  # hiding a file must not cost the namespaces
        assert box.implementation().peek() == ""
