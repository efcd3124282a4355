"""What crosses the socket between the tests and the child: the errors, the framing, and NumPy arrays as .npy bytes
read without pickle, each checked (numeric dtype only, bounded size). On the parent's side every size the child
controls is capped before it is parsed or allocated (the MAX_ constants below), so that what the test process
allocates for a child stays bounded whatever the child sends."""

import io
import json
import math
import re
import socket
import struct
import time

import numpy as np

from ..course.places import running

MAX_MESSAGE_BYTES = 1 << 30  # a header or a blob, on the child's side (what the tests send is not capped further)
MAX_ARRAY_ELEMENTS = 50_000_000
MAX_DEPTH = 50  # lists, tuples and dicts nested in one value (rpc.py encodes and decodes no deeper)

# What the child may send the parent (Channel(bounded=True)), checked before anything is parsed or allocated. The
# figures are the largest measured on the lesson suites through the sandbox (pytest --impl solutions --sandbox tests),
# then on a correct implementation returning NumPy integers where the reference returns ints (each crosses as an
# array of its own). JSON costs up to 26 times its size while it is parsed, 15 times once decoded (2-character
# strings); an array twice its size while the tests hold it (its content at the last sync: mirrors.py).
MAX_HEADER_BYTES = 4 << 20  # one message's JSON: 214,173 bytes (generate_tokenized_dataset(5000)); 883,986
MAX_NESTING = 3 * MAX_DEPTH + 10  # brackets open at once in it: 9; a value MAX_DEPTH deep needs up to 3 a level
MAX_ARRAY_BYTES = 16 << 20  # one message's arrays (.npy bytes): 1,639,488 (a Transformer's parameters and
#                             gradients); 4,760,000
# in one test (until Sandbox.reset()):
MAX_TEST_BYTES = 32 << 20  # everything: 3,300,251 (lesson 10's training, 1,216 messages); 6,546,790
MAX_TEST_JSON_BYTES = 8 << 20  # JSON: 1,493,730 (lesson 07's 10,858 messages); 884,286
MAX_TEST_ARRAYS = 100_000  # arrays: 2,109 (54 in one message); 35,000 (in one message)
ALLOWED_KINDS = "biuf"  # bool, signed and unsigned integers, floats
NO_ANSWER = "the implementation did not answer before the deadline"


class SandboxError(Exception):
    """The child cannot be reached: it died, timed out or broke the protocol. The message says which."""

    __module__ = "kata.sandbox"  # the name a report shows (kata.sandbox.SandboxError), wherever it is defined


class NotContained(SandboxError):
    """The child cannot be confined here (no namespaces, and no other user that could run it with the hidden paths
    closed), and the policy does not allow running it anyway. The message says why and what to do."""


class ChildDied(SandboxError):
    __module__ = "kata.sandbox"


class CallTimeout(SandboxError):
    """The child did not answer in time; place: where it was running then (a kata.course.places.Place with the
    path as the grader knows it), or None."""

    __module__ = "kata.sandbox"

    def __init__(self, message, place=None):
        super().__init__(message)
        self.place = place


class RemoteError(Exception):
    """An exception of the implementation with no built-in counterpart here (SystemExit, KeyboardInterrupt,
    pytest's outcomes, the student's own classes): its type name and message, never the object itself."""

    __module__ = "kata.sandbox"


# ---------------------------------------------------------------- framing

def _read_into(sock, buffer, deadline, on_timeout=None):
    """Fill buffer (a writable memoryview of bytes) from sock by deadline; on_timeout() gives the place for a
    CallTimeout (and may stop the child)."""
    done, size = 0, len(buffer)
    while done < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                place = on_timeout() if on_timeout else None
                raise CallTimeout(NO_ANSWER + running(place), place)
            sock.settimeout(remaining)
        try:
            got = sock.recv_into(buffer[done:], min(size - done, 1 << 20))
        except socket.timeout:
            place = on_timeout() if on_timeout else None
            raise CallTimeout(NO_ANSWER + running(place), place) from None
        except OSError as error:
            raise ChildDied(f"the connection to the implementation broke: {error}") from None
        if not got:
            raise ChildDied("the implementation's process ended")
        done += got


def array_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array if array.flags.c_contiguous else array.copy(order="C"),
                              allow_pickle=False)  # (np.ascontiguousarray would make a 0-d array 1-d)
    return buffer.getvalue()


NPY_HEADER = re.compile(rb"\{'descr': '([<>|]?[biuf][1-8])', 'fortran_order': (False|True), "
                        rb"'shape': \(((?:[0-9]{1,18}, ?)*[0-9]{0,18})\), \} *\n")  # as numpy writes it, strictly


def _npy_header(raw):
    """(shape, fortran order, dtype, where the data starts) of the .npy bytes raw (a uint8 array)."""
    if raw[:8].tobytes() == b"\x93NUMPY\x01\x00" and len(raw) >= 10:  # the common case, parsed without numpy's ast
        size = int.from_bytes(raw[8:10].tobytes(), "little")
        header = NPY_HEADER.fullmatch(raw[10:10 + size].tobytes())
        if header is not None:
            try:
                dtype = np.dtype(header[1].decode())
            except TypeError:  # 'f1', 'i3': no such type
                raise SandboxError(f"the implementation sent an array of unknown dtype {header[1]!r}") from None
            shape = tuple(int(n) for n in header[3].split(b",") if n.strip())
            return shape, header[2] == b"True", dtype, 10 + size
    stream = io.BytesIO(raw[:1 << 16].tobytes())  # (numpy reads no header longer than 10,000 bytes)
    try:
        version = np.lib.format.read_magic(stream)
        reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in reader:
            raise ValueError(f"version {version}")
        shape, fortran, dtype = reader[version](stream)
    except Exception as error:  # noqa: BLE001 - numpy's parser on anything: ValueError, SyntaxError, TokenError...
        raise SandboxError(f"the implementation sent malformed array data ({error})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in ALLOWED_KINDS:
        raise SandboxError(f"the implementation sent an array of dtype {dtype}; only numbers cross")
    return shape, fortran, dtype, stream.tell()


def read_array(blob):
    """A plain ndarray from .npy bytes, refusing pickled, structured or non-numeric data and huge shapes. Of a large
    writable blob (a bytearray, a uint8 array) the array is a view: its data is not copied."""
    raw = blob if isinstance(blob, np.ndarray) and blob.dtype == np.uint8 and blob.ndim == 1 else \
        np.frombuffer(blob, np.uint8)
    shape, fortran, dtype, start = _npy_header(raw)
    if len(shape) > 32 or any(n < 0 for n in shape):
        raise SandboxError(f"the implementation sent malformed array data (shape {shape})")
    if math.prod(shape) > MAX_ARRAY_ELEMENTS or any(n > MAX_ARRAY_ELEMENTS for n in shape):
        raise SandboxError(f"the implementation sent an array of shape {shape}, larger than allowed")
    data = raw[start:] if raw.flags.writeable else raw[start:].copy()
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise SandboxError("the implementation sent malformed array data (its size does not match its shape)")
    array = data.view(dtype).reshape(shape, order="F" if fortran else "C")
    small = len(data) < 1 << 16  # (a copy costs less than keeping the whole blob, .npy header included)
    return array if array.flags.aligned and not small else array.copy(order="K")


STEPS = np.zeros(256, np.int8)  # what each byte of JSON text does to the number of brackets open
STEPS[list(b"[{")], STEPS[list(b"]}")] = 1, -1


def nesting(text):
    """How deep brackets nest in JSON text outside its strings: a linear scan, without recursion, in bounded memory.
    Never less than the depth json.loads reaches in any part of text it accepts."""
    # the escapes first, left to right as JSON reads them: then every quote left opens or closes a string
    text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    depth = deepest = inside = 0
    for start in range(0, len(text), 1 << 20):
        chunk = np.frombuffer(text, np.uint8, min(1 << 20, len(text) - start), start)
        quotes = (np.cumsum(chunk == ord('"'), dtype=np.uint8) + inside) & 1  # (the parity survives overflow)
        levels = np.cumsum(STEPS[chunk] * (quotes == 0), dtype=np.int32) + depth
        deepest, depth, inside = max(deepest, int(levels.max())), int(levels[-1]), int(quotes[-1])
    return deepest


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


JSON = json.JSONDecoder(parse_constant=_no_constant)  # NaN and Infinity are not JSON (nor ever sent)


def parse_header(data):
    """The JSON header data (UTF-8 bytes or bytearray) as a dict, refused as a SandboxError unless it is one, nested
    no deeper than MAX_NESTING (checked before it is parsed)."""
    depth = nesting(data) if data.count(b"[") + data.count(b"{") > MAX_NESTING else 0  # (else no deeper)
    if depth > MAX_NESTING:
        raise SandboxError(f"a malformed message (its JSON is nested {depth} deep, more than the {MAX_NESTING} "
                           f"allowed)")
    try:
        header = JSON.decode(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, NaN, an int of more than 4300 digits
        raise SandboxError(f"a malformed message ({str(error)[:200]})") from None
    if not isinstance(header, dict):
        raise SandboxError("a malformed message (not a JSON object)")
    return header


class Blobs(list):
    """The arrays of one message, in order. Each is taken once (take()): a message cannot make one array stand for
    many values, keys or updates."""

    def __init__(self, arrays=()):
        super().__init__(arrays)
        self.taken = set()

    def take(self, index):
        if type(index) is not int or not 0 <= index < len(self):
            raise SandboxError("a malformed array reference")
        if index in self.taken:
            raise SandboxError("a malformed array reference (one array's data used twice)")
        self.taken.add(index)
        return self[index]


def blob_sizes(header, bounded):
    """The sizes of the arrays that follow header, checked against the caps before any is read."""
    sizes = header.get("blobs")
    if not isinstance(sizes, list) or not all(type(n) is int and n >= 0 for n in sizes):
        raise SandboxError("a malformed message (no list of blob sizes)")
    if not bounded and any(n > MAX_MESSAGE_BYTES for n in sizes):
        raise SandboxError(f"an array of {max(sizes):,} bytes, more than the {MAX_MESSAGE_BYTES:,} allowed")
    if bounded and sum(sizes) > MAX_ARRAY_BYTES:
        raise SandboxError(f"the implementation sent {sum(sizes):,} bytes of arrays in one message, more than the "
                           f"{MAX_ARRAY_BYTES >> 20} MiB allowed")
    return sizes


class Budget:
    """What the child sent during one test, against the caps (MAX_TEST_...), counted before it is read."""

    def __init__(self):
        self.bytes = self.json = self.arrays = 0

    def spend(self, size=0, json_bytes=0, arrays=0):
        self.bytes += size + json_bytes
        self.json += json_bytes
        self.arrays += arrays
        for spent, cap, what in ((self.bytes, MAX_TEST_BYTES, f"{MAX_TEST_BYTES >> 20} MiB"),
                                 (self.json, MAX_TEST_JSON_BYTES, f"{MAX_TEST_JSON_BYTES >> 20} MiB of JSON"),
                                 (self.arrays, MAX_TEST_ARRAYS, f"{MAX_TEST_ARRAYS:,} arrays")):
            if spent > cap:
                raise SandboxError(f"the implementation sent more than the {what} allowed in one test")


class Channel:
    """Messages on a socket: an 8-byte length, a JSON header, then the arrays it refers to as .npy blobs.

    bounded (the parent's side): what arrives is capped before it is parsed or allocated, each message by the MAX_
    constants and each test by a Budget (new_test() starts the next one's). The child trusts the tests."""

    def __init__(self, sock, bounded=True):
        self.sock = sock
        self.bounded = bounded
        self.deadline = None  # time.monotonic() by which each read must be done; None: wait for ever
        self.on_timeout = None  # returns where the child was (a Place or None) for a CallTimeout
        self.budget = Budget()

    def new_test(self):
        self.budget = Budget()

    def send(self, header, arrays):
        blobs = [array_bytes(a) for a in arrays]
        header = dict(header, blobs=[len(b) for b in blobs])
        data = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
        try:
            self.sock.sendall(struct.pack("!Q", len(data)) + data)
            for blob in blobs:
                self.sock.sendall(blob)
        except OSError as error:
            raise ChildDied(f"the implementation's process cannot be reached: {error}") from None

    def _spend(self, **amounts):
        if self.bounded:
            self.budget.spend(**amounts)

    def _read(self, buffer):
        """Fill buffer: a bytearray, or a uint8 array (whose pages are touched only as the bytes arrive)."""
        _read_into(self.sock, memoryview(buffer).cast("B"), self.deadline, self.on_timeout)
        return buffer

    def recv(self):
        self._spend(size=8)
        size = struct.unpack("!Q", self._read(bytearray(8)))[0]
        limit = MAX_HEADER_BYTES if self.bounded else MAX_MESSAGE_BYTES
        if size > limit:
            raise SandboxError(f"a message header of {size:,} bytes, more than the {limit:,} allowed")
        self._spend(json_bytes=size)
        header = parse_header(self._read(bytearray(size)))
        sizes = blob_sizes(header, self.bounded)
        self._spend(size=sum(sizes), arrays=len(sizes))
        return header, Blobs(read_array(self._read(np.empty(n, np.uint8))) for n in sizes)
