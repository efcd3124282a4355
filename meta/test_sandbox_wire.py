"""What the child sends the tests' side, malformed in every way it can be: each is refused as the sandbox's own
error (a SandboxError, never a ValueError or a RecursionError of the parsing), and the child is stopped. The frames
go through a socket pair to a ParentEndpoint, as a hostile child would send them (kata/sandbox/wire.py, rpc.py,
parent.py, mirrors.py); what they cost in memory: meta/test_sandbox_memory.py."""

import json
import re
import socket
import struct
import time

import numpy as np
import pytest

from kata.sandbox import SandboxError
from kata.sandbox.parent import ParentEndpoint
from kata.sandbox.wire import Channel, nesting
from meta.test_sandbox import npy

pytestmark = pytest.mark.meta


class Box:
    """What a ParentEndpoint needs of its Sandbox: the child is stopped after it broke the protocol."""

    stopped = False

    def stop(self):
        self.stopped = True

    def _inside_to_outside(self, text):
        return text


class Recorder:
    """A socket that keeps what is sent (to record a message as a Channel frames it)."""

    def __init__(self):
        self.data = b""

    def sendall(self, data):
        self.data += bytes(data)


def frame(header, *arrays, raw=()):
    """The bytes of one message: header (a dict, or bytes sent as they are, with their length) and arrays as the
    Channel frames them, or raw blobs announced by the header itself."""
    if isinstance(header, bytes):
        return struct.pack("!Q", len(header)) + header + b"".join(raw)
    recorder = Recorder()
    Channel(recorder).send(header, list(arrays))
    return recorder.data + b"".join(raw)


def blobs(*raw):
    """A message of raw .npy blobs alone."""
    return frame(json.dumps({"blobs": [len(blob) for blob in raw]}).encode(), raw=raw)


def answer(value, *arrays, **fields):
    return frame({"kind": "result", "id": 1, "value": value, **fields}, *arrays)


def served(data, box=None):
    """What the tests' side makes of data (one or more messages) as the answer to its first request, which passes
    an array (shared as p1) and a function (handle "fcb"): (the value, the Box)."""
    ours, theirs = socket.socketpair()
    box = box or Box()
    endpoint = ParentEndpoint(box, Channel(ours))
    endpoint.channel.deadline = time.monotonic() + 30  # (a bound: every case ends at once)
    endpoint.callbacks["fcb"] = lambda *args, **kwargs: 0.0
    try:
        theirs.sendall(data)
        theirs.shutdown(socket.SHUT_WR)  # nothing more: a read past the end is ChildDied, not a wait
        return endpoint.request("call", args=[np.zeros(3)]), box
    finally:
        ours.close()
        theirs.close()


ROW = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", b"\0" * 24)
VALID = [answer(1.5), answer({"$list": [{"$array": "c1", "data": 0}, {"$scalar": 1}]}, np.ones(2), np.float64(2)),
         frame({"kind": "request", "id": 7, "op": "callback", "name": "fcb", "args": {"$list": [{"$copy": 0}]},
                "kwargs": {"$dict": [["k", 1]]}}, np.ones(2)) + answer(None),
         answer({"$dict": [["a", {"$tuple": [1, {"$float": "nan"}]}]]}, np.ones(3), updates=[["p1", 0]],
                dropped=["c9"], released=[]),
         frame({"kind": "error", "id": 1, "error": {"type": "ValueError", "message": "m", "place": ["f.py", 3, "g"]}})]
MALFORMED = {  # the frame, and what the SandboxError says
    "not-json": (frame(b"{not json"), "malformed message"),
    "not-utf8": (frame(b'{"blobs": [], "s": "\xff"}'), "malformed message"),
    "nan": (frame(b'{"kind": "result", "id": 1, "blobs": [], "value": NaN}'), "NaN is not JSON"),
    "infinity": (frame(b'{"kind": "result", "id": 1, "blobs": [], "value": -Infinity}'), "Infinity is not JSON"),
    "huge-int": (frame(b'{"blobs": [], "id": ' + b"9" * 5000 + b"}"), "malformed message"),
    "not-an-object": (frame(b"[1, 2]"), "not a JSON object"),
    "deep": (frame(b"[" * 100_000 + b"]" * 100_000), "nested 100000 deep"),
    "deep-past-escaped-quotes": (frame(b'["\\\\", "\\"", ' + b"[" * 1000 + b"]" * 1001), "nested 1001 deep"),
    "header-too-long": (struct.pack("!Q", 1 << 40), "more than the 4,194,304 allowed"),
    "blobs-not-a-list": (frame(b'{"blobs": 5}'), "no list of blob sizes"),
    "blob-negative": (frame(b'{"blobs": [-1]}'), "no list of blob sizes"),
    "blob-bool": (frame(b'{"blobs": [true]}'), "no list of blob sizes"),
    "blob-float": (frame(b'{"blobs": [1.5]}'), "no list of blob sizes"),
    "blob-string": (frame(b'{"blobs": ["10"]}'), "no list of blob sizes"),
    "blob-huge": (frame(b'{"blobs": [1000000000000000000000000]}'), "bytes of arrays in one message"),
    "too-many-arrays": (frame(b'{"blobs": [' + b"0," * 100_000 + b'0]}'), "arrays allowed in one test"),
    "array-unicode": (blobs(npy("{'descr': '<U1', 'fortran_order': False, 'shape': (1,), }", b"a\0\0\0")), "dtype"),
    "array-negative-dims": (blobs(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, -1), }", b"\0" * 8)),
                            "shape"),
    "array-70-dims": (blobs(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "1, " * 70 + "), }",
                                b"\0" * 8)), "shape"),
    "array-huge-empty": (blobs(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 10000000000000000000), }")),
                         "larger"),
    "array-5000-digit-dim": (blobs(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",), }")),
                             "malformed"),
    "array-version-3": (blobs(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (0,), }", version=b"\x03\x00")),
                        "malformed"),
    "array-header-cut": (blobs(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }")[:40]), "malformed"),
    "value-a-list": (answer([1, 2]), "malformed value"),
    "value-empty": (answer({}), "malformed value"),
    "float-not-special": (answer({"$float": "1e5"}), "malformed float"),
    "float-a-list": (answer({"$float": [1]}), "malformed float"),
    "scalar-out-of-range": (answer({"$scalar": 5}), "malformed array reference"),
    "scalar-bool": (answer({"$scalar": True}, np.float64(1)), "malformed array reference"),
    "scalar-not-0-d": (answer({"$scalar": 0}, np.ones(3)), "malformed scalar"),
    "copy-string-index": (answer({"$copy": "0"}, np.ones(3)), "malformed array reference"),
    "array-key-not-a-string": (answer({"$array": 3, "data": 0}, np.ones(3)), "malformed array key"),
    "array-never-shared": (answer({"$array": "c77"}), "never shared"),
    "array-under-our-key": (answer({"$array": "p1", "data": 0}, np.ones(3)), "new data under the key"),
    "array-empty-key": (answer({"$array": "", "data": 0}, np.ones(3)), "new data under the key"),
    "one-blob-two-keys": (answer({"$list": [{"$array": "c1", "data": 0}, {"$array": "c2", "data": 0}]}, np.ones(3)),
                          "malformed array reference"),
    "list-not-a-list": (answer({"$list": 3}), "malformed list"),
    "dict-not-pairs": (answer({"$dict": [[1]]}), "malformed dict"),
    "dict-key-a-list": (answer({"$dict": [[{"$list": []}, 1]]}), "not plain data"),
    "dict-key-unhashable": (answer({"$dict": [[{"$tuple": [{"$list": []}]}, 1]]}), "unhashable"),
    "nested-past-50": (answer(json.loads('{"$list": [' * 60 + "1" + "]}" * 60)), "more than 50 levels"),
    "object-handle-a-list": (answer({"$object": [1]}), "malformed value"),
    "object-type-a-list": (answer({"$object": "o1", "type": [1]}), "malformed value"),
    "unknown-tag": (answer({"$foo": 1}), "malformed value"),
    "updates-not-a-list": (answer(1, updates=5), "malformed update list"),
    "update-key-not-a-string": (answer(1, updates=[[1, 0]]), "malformed update"),
    "update-out-of-range": (answer(1, updates=[["p1", 3]]), "malformed array reference"),
    "update-changes-shape": (answer(1, np.ones(4), updates=[["p1", 0]]), "changed from"),
    "dropped-not-a-list": (answer(1, dropped={}), "dropped"),
    "released-not-a-list": (answer(1, released="p1"), "released"),
    "unknown-kind": (frame({"kind": "gift", "id": 1}), "malformed answer"),
    "wrong-id": (frame({"kind": "result", "id": 2, "value": 1}), "not asked"),
    "id-a-list": (frame({"kind": "result", "id": [1], "value": 1}), "not asked"),
    "error-not-a-dict": (frame({"kind": "error", "id": 1, "error": "boom"}), "malformed error"),
    "request-not-a-callback": (frame({"kind": "request", "id": 7, "op": "getattr"}), "asked the tests for"),
    "request-no-id": (frame({"kind": "request", "op": "callback", "name": "fcb"}), "no id"),
    "callback-name-a-list": (frame({"kind": "request", "id": 7, "op": "callback", "name": ["fcb"]}), "never given"),
    "callback-args-not-a-list": (frame({"kind": "request", "id": 7, "op": "callback", "name": "fcb",
                                        "args": {"$dict": []}}), "malformed arguments"),
    "callback-kwargs-keys": (frame({"kind": "request", "id": 7, "op": "callback", "name": "fcb",
                                    "kwargs": {"$dict": [[1, 2]]}}), "malformed arguments"),
    "truncated-header": (frame(b'{"blobs": []}')[:12], "process ended"),
    "truncated-blob": (frame(b'{"blobs": [152]}', raw=[ROW[:100]]), "process ended"),
}


@pytest.mark.parametrize("data, says", list(MALFORMED.values()), ids=list(MALFORMED))
def test_anything_malformed_the_child_sends_is_the_sandboxs_own_error_and_stops_it(data, says):
    box = Box()
    with pytest.raises(SandboxError, match=re.escape(says)) as raised:
        served(data, box)
    assert type(raised.value).__module__ == "kata.sandbox", repr(raised.value)
    assert box.stopped, "a child that broke the protocol must be stopped"


def test_what_the_child_may_send_is_served():
    """The frames the fuzzing below starts from: each is an answer the tests' side takes (or an error it raises)."""
    assert served(VALID[0])[0] == 1.5
    value, box = served(VALID[1])
    assert value[1] == 2.0 and value[0].shape == (2,) and not box.stopped
    assert served(VALID[2])[0] is None
    value = served(VALID[3])[0]
    assert value["a"][0] == 1 and np.isnan(value["a"][1])
    with pytest.raises(ValueError) as raised:
        served(VALID[4])
    assert raised.value.remote_message == "m"


@pytest.mark.parametrize("trail, kept", [
    (None, ()), ("f.py", ()), ([["a.py", 1, "f"], ["b.py", "2", None], 7, ["c.py", None, None]],
                               (("a.py", 1, "f"), ("c.py", None, None))),
    ([[f"{k}.py", k, "f"] for k in range(10_000)], tuple((f"{k}.py", k, "f") for k in range(9_984, 10_000))),
], ids=["none", "a-string", "some-malformed", "ten-thousand"])
def test_an_errors_trail_keeps_the_well_formed_places_and_at_most_sixteen(trail, kept):
    """The trail of files an error of the child went through (to name the exercise that called a helper): what is
    not a place is dropped, and only the innermost 16 are read."""
    error = {"type": "ValueError", "message": "m", "place": ["f.py", 3, "g"], "trail": trail}
    with pytest.raises(ValueError) as raised:
        served(frame({"kind": "error", "id": 1, "error": error}))
    assert tuple((p.file, p.line, p.function) for p in raised.value.remote_trail) == kept


def test_random_mutations_of_real_frames_are_served_or_refused_never_anything_else():
    """3,000 mutations (fixed seed) of the frames above: bytes flipped, cut, repeated, and JSON values replaced."""
    rng = np.random.default_rng(0)
    odd = [-1, 0, 1, 2, 10 ** 20, 1.5, "", "p1", "c1", "$list", None, True, [], {}, [[]], {"$list": []}, [1, 2]]
    for case in range(3000):
        data = bytearray(VALID[case % len(VALID)])
        size = struct.unpack("!Q", data[:8])[0]
        if case % 3 == 0:  # a JSON value replaced
            header = node = json.loads(data[8:8 + size])
            while node:  # down to a random value, replaced
                key = list(node)[rng.integers(len(node))] if isinstance(node, dict) else int(rng.integers(len(node)))
                if not isinstance(node[key], (dict, list)) or rng.random() < 0.3:
                    node[key] = odd[rng.integers(len(odd))]
                    break
                node = node[key]
            text = json.dumps(header).encode()
            data = struct.pack("!Q", len(text)) + text + data[8 + size:]
        else:
            for _ in range(rng.integers(1, 4)):
                at = int(rng.integers(len(data)))
                choice = rng.integers(3)
                if choice == 0:
                    data[at] = rng.integers(256)
                elif choice == 1:
                    del data[at:at + int(rng.integers(1, 8))]
                else:
                    data[at:at] = data[at:at + int(rng.integers(1, 8))]
        try:
            served(bytes(data))
        except SandboxError:
            pass
        except Exception as error:  # noqa: BLE001 - only the child's own error, told as data, may be raised
            assert hasattr(error, "remote_message"), (repr(error), bytes(data))


@pytest.mark.parametrize("text, depth", [
    (b'{"a": [1, {"b": []}]}', 4), (b'"[[[["', 0), (b'["\\\\"]', 1), (b'["\\"[[", "]"]', 1),
    (b'[' * 3000, 3000), (b'{"s": "\\\\\\"}"}', 1)])
def test_nesting_counts_the_brackets_outside_strings(text, depth):
    assert nesting(text) == depth
