"""What crosses the socket between the tests and the child: the errors, the framing, and NumPy arrays as .npy bytes
read without pickle, each checked (numeric dtype only, bounded size)."""

import io
import json
import math
import re
import socket
import struct
import time

import numpy as np

from ..course.places import running

MAX_MESSAGE_BYTES = 1 << 30
MAX_ARRAY_ELEMENTS = 50_000_000
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

def _read_exactly(sock, size, deadline, on_timeout=None):
    """size bytes from sock by deadline; on_timeout() gives the place for a CallTimeout (and may stop the child)."""
    chunks, left = [], size
    while left:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                place = on_timeout() if on_timeout else None
                raise CallTimeout(NO_ANSWER + running(place), place)
            sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except socket.timeout:
            place = on_timeout() if on_timeout else None
            raise CallTimeout(NO_ANSWER + running(place), place) from None
        except OSError as error:
            raise ChildDied(f"the connection to the implementation broke: {error}") from None
        if not chunk:
            raise ChildDied("the implementation's process ended")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def array_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array if array.flags.c_contiguous else array.copy(order="C"),
                              allow_pickle=False)  # (np.ascontiguousarray would make a 0-d array 1-d)
    return buffer.getvalue()


NPY_HEADER = re.compile(rb"\{'descr': '([<>|]?[biuf][1-8])', 'fortran_order': (False|True), "
                        rb"'shape': \(((?:[0-9]+, ?)*[0-9]*)\), \} *\n")  # as numpy writes it, strictly


def read_array(blob):
    """A plain ndarray from .npy bytes, refusing pickled, structured or non-numeric data and huge shapes."""
    if blob[:8] == b"\x93NUMPY\x01\x00" and len(blob) >= 10:  # the common case, parsed without numpy's ast
        size = int.from_bytes(blob[8:10], "little")
        header = NPY_HEADER.fullmatch(blob, 10, 10 + size)
        if header is not None:
            try:
                dtype = np.dtype(header[1].decode())
            except TypeError:  # 'f1', 'i3': no such type
                raise SandboxError(f"the implementation sent an array of unknown dtype {header[1]!r}") from None
            shape = tuple(int(n) for n in header[3].split(b",") if n.strip())
            count = math.prod(shape)
            if count > MAX_ARRAY_ELEMENTS:
                raise SandboxError(f"the implementation sent an array of shape {shape}, larger than allowed")
            data = memoryview(blob)[10 + size:]
            if len(data) != count * dtype.itemsize:
                raise SandboxError("the implementation sent malformed array data (its size does not match its shape)")
            return np.frombuffer(data, dtype).reshape(shape, order="F" if header[2] == b"True" else "C").copy(
                order="K")
    stream = io.BytesIO(blob)
    try:
        version = np.lib.format.read_magic(stream)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(stream)
    except ValueError as error:
        raise SandboxError(f"the implementation sent malformed array data ({error})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in ALLOWED_KINDS:
        raise SandboxError(f"the implementation sent an array of dtype {dtype}; only numbers cross")
    if math.prod(shape) > MAX_ARRAY_ELEMENTS:
        raise SandboxError(f"the implementation sent an array of shape {shape}, larger than allowed")
    stream.seek(0)
    try:
        array = np.lib.format.read_array(stream, allow_pickle=False)
    except (ValueError, EOFError) as error:
        raise SandboxError(f"the implementation sent malformed array data ({error})") from None
    return np.array(array, copy=False) if type(array) is np.ndarray else np.asarray(array)


class Channel:
    """Messages on a socket: an 8-byte length, a JSON header, then the arrays it refers to as .npy blobs."""

    def __init__(self, sock):
        self.sock = sock
        self.deadline = None  # time.monotonic() by which each read must be done; None: wait for ever
        self.on_timeout = None  # returns where the child was (a Place or None) for a CallTimeout

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

    def recv(self):
        size = struct.unpack("!Q", _read_exactly(self.sock, 8, self.deadline, self.on_timeout))[0]
        if size > MAX_MESSAGE_BYTES:
            raise SandboxError(f"a message of {size} bytes: larger than allowed")
        try:
            header = json.loads(_read_exactly(self.sock, size, self.deadline))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:  # (nested past Python's stack)
            raise SandboxError(f"a malformed message ({error})") from None
        if not isinstance(header, dict) or not isinstance(header.get("blobs"), list) or \
                not all(isinstance(n, int) and 0 <= n <= MAX_MESSAGE_BYTES for n in header["blobs"]):
            raise SandboxError("a malformed message (no list of blob sizes)")
        arrays = [read_array(_read_exactly(self.sock, n, self.deadline)) for n in header["blobs"]]
        return header, arrays
