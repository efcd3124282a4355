"""What a hostile child costs the test process: the peak memory of a fresh process holding a Sandbox while its child
sends what is built to make the parent allocate (kata/sandbox/wire.py caps every size the child controls before it
is parsed or allocated). Each measure is the process's peak resident memory (VmHWM, reset by /proc/self/clear_refs
once the sandbox is up) above its resident memory then: memory, not time, so it holds on a loaded machine too.

The implementation below writes its own frames on the child's end of the socket where the protocol's encoding would
not produce them (the child's fd is on its command line). Measured (MiB above the baseline; before: the sandbox of
commit 9f95d81, whose caps were 1 GiB a header or blob and nothing per message or test):

    flood              before   after         flood              before   after
    huge-header          6272       0         medium-messages       264      48
    widest-header         104     112         kept-strings         1110     118
    deep-header             8      27         kept-mixed            704     154
    ten-views            1000       0         kept-arrays           249      61
    aliased-blob          132      24         many-scalars           39      46
    slow-frame (1 GiB)   1030       0         many-arrays            92      75

The kept- floods grew without end before (20 calls measured); now a test's budget stops them. The worst the caps
allow, a test keeping every value: 8 MiB of JSON at 15 times its size, 24 MiB of arrays twice over, and one header
being parsed at 26 times its size: about 240 MiB, hence BOUND_MIB.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from kata.course.repository import ROOT

pytestmark = pytest.mark.meta
BOUND_MIB = 256  # the most the test process may grow by, whatever the child sends

HOSTILE = r'''
import io, json, os, socket, struct, sys, time
import numpy as np

_sock = socket.socket(fileno=os.dup(int(sys.argv[sys.argv.index("--fd") + 1])))


def _ident():
    """The id of the request being served (a local of the child's serve_one)."""
    frame = sys._getframe()
    while "ident" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals["ident"]


def _send(header, *blobs):
    header = header if isinstance(header, bytes) else json.dumps(header).encode()
    _sock.sendall(struct.pack("!Q", len(header)) + header)
    for blob in blobs:
        _sock.sendall(blob)


def _npy(nbytes):
    """The .npy header of a float64 vector of nbytes."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": "<f8", "fortran_order": False, "shape": (nbytes // 8,)})
    return stream.getvalue()


def _stall():
    while True:
        time.sleep(1)


def wide_header(nbytes):
    """A header of nbytes of JSON, about as many values as it has bytes (no blob sizes)."""
    _send(b'{"kind":"result","id":%d,"value":[' % _ident() + b"{}," * (nbytes // 3 - 20) + b"{}]}")
    _stall()


def deep_header(nbytes):
    _send(b"[" * nbytes)
    _stall()


def views(nbytes, count=10):
    """count views of one array of nbytes, returned at once: each crosses as an array of its own."""
    array = np.zeros(nbytes // 8)
    return [array[:] for _ in range(count)]


def aliased(nbytes, count=10):
    """One array sent once and named by count keys."""
    head = _npy(nbytes)
    value = {"$list": [{"$array": f"c{9000 + i}", "data": 0} for i in range(count)]}
    _send({"kind": "result", "id": _ident(), "value": value, "blobs": [len(head) + nbytes]}, head, bytes(nbytes))
    _stall()


def slow(nbytes, piece=1 << 20):
    """A frame announcing an array of nbytes, streamed a piece at a time, then nothing more."""
    head = _npy(nbytes)
    _send({"kind": "result", "id": _ident(), "value": {"$copy": 0}, "blobs": [len(head) + nbytes]}, head)
    zeros = bytes(piece)
    for _ in range(nbytes // piece - 1):
        _sock.sendall(zeros)
        time.sleep(0.01)
    _stall()


def medium(nbytes):
    return np.ones(nbytes // 8)


def strings(count):
    """count distinct strings of 2 characters (JSON that costs the most kept: 15 times its size)."""
    return [str(10 + i % 90) for i in range(count)]


_calls = []


def mixed(nbytes, count):
    """medium(nbytes) and strings(count) in turn."""
    _calls.append(1)
    return medium(nbytes) if len(_calls) % 2 else strings(count)


def many(count, scalars):
    """count arrays returned at once: NumPy scalars (each crosses as a 0-d array) or empty arrays (each shared)."""
    return [np.float64(0) for _ in range(count)] if scalars else [np.zeros(0) for _ in range(count)]
'''

MEASURE = r'''
import json, sys
from kata.sandbox import Policy, Sandbox, SandboxError


def status(field):
    with open("/proc/self/status") as stream:
        return next(int(line.split()[1]) for line in stream if line.startswith(field + ":")) / 1024


folder, name, args, times, seconds = sys.argv[1:3] + [json.loads(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])]
box = Sandbox(folder, Policy(hidden=(), allow_unconfined=True)).start()  # (the code it runs is ours)
attack = getattr(box.implementation(), name)
with open("/proc/self/clear_refs", "w") as stream:
    stream.write("5")  # the peak from now on
base, kept, error = status("VmRSS"), [], None
try:
    for _ in range(times):
        box.set_deadline(seconds)
        kept.append(attack(*args))  # a test may keep every value it is given
except SandboxError as raised:
    error = raised
print(json.dumps({"peak": status("VmHWM") - base, "kept": status("VmRSS") - base, "alive": box.alive(),
                  "error": error and type(error).__name__, "message": str(error)[:300]}))
box.stop()
'''


@dataclass(frozen=True)
class Flood:
    id: str
    call: str  # the implementation's function the test calls
    args: tuple
    says: str  # what the SandboxError says ("": no error, the values are kept)
    times: int = 1  # how many calls in one test, every value kept
    seconds: float = 60.0  # the test's deadline for each call: a bound, never reached but by `slow`


FLOODS = [
    Flood("huge-header", "wide_header", (250 << 20,), "more than the 4,194,304 allowed"),
    Flood("widest-header", "wide_header", ((4 << 20) - 8,), "no list of blob sizes"),
    Flood("deep-header", "deep_header", ((4 << 20) - 8,), "nested"),
    Flood("ten-views", "views", (50 << 20,), "bytes of arrays in one message"),
    Flood("aliased-blob", "aliased", (12 << 20,), "malformed array reference"),
    Flood("slow-big-frame", "slow", (2 << 30,), "bytes of arrays in one message"),
    Flood("slow-frame", "slow", (15 << 20,), "did not answer before the deadline", seconds=3.0),
    Flood("medium-messages", "medium", (12 << 20,), "MiB allowed in one test", times=20),
    Flood("kept-strings", "strings", (800_000,), "MiB of JSON allowed in one test", times=20),
    Flood("kept-mixed", "mixed", (12 << 20, 800_000), "allowed in one test", times=20),
    Flood("kept-arrays", "many", (60_000, False), "arrays allowed in one test", times=20),
    Flood("many-scalars", "many", (99_990, True), ""),
    Flood("many-arrays", "many", (99_990, False), ""),
]


def measure(flood, folder, path=None):
    """What the flood costs a fresh process holding a sandbox: {"peak" (MiB), "error", "message", "alive"}."""
    env = dict(os.environ, PYTHONPATH=str(path or ROOT))
    done = subprocess.run([sys.executable, "-c", MEASURE, str(folder), flood.call, json.dumps(flood.args),
                           str(flood.times), str(flood.seconds)], capture_output=True, text=True, env=env,
                          cwd=path or ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flood") / "submission"
    folder.mkdir()
    (folder / "__init__.py").write_text(HOSTILE)
    return folder


@pytest.mark.parametrize("flood", FLOODS, ids=[flood.id for flood in FLOODS])
def test_what_the_child_sends_costs_the_test_process_a_bounded_peak(flood, hostile):
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("no /proc/self/clear_refs here: the peak cannot be measured from a point on")
    result = measure(flood, hostile)
    assert result["peak"] < BOUND_MIB, f"{flood.id}: the test process grew by {result['peak']:.0f} MiB ({result})"
    if flood.says:
        assert flood.says in result["message"], result
        assert not result["alive"], f"{flood.id}: the child was not stopped after it broke the protocol"
    else:
        assert result["error"] is None, result
