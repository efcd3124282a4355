"""Run an implementation in a child process and reach it from the tests through plain data only.

    with Sandbox("path/to/submission") as box:
        impl = box.implementation()          # impl.LayerNorm(4).forward(x) runs in the child
        ...

The parent (the process running the tests) never executes the submission's code. The child imports it and
serves requests: read or assign an attribute, call a function, a class or a method. Only plain data crosses,
framed on a socket: JSON for None, bools, numbers, strings, lists, tuples and dicts, and NumPy arrays as .npy
bytes read without pickle, each checked (numeric dtype only, bounded size). Objects of the child stay in the
child; the parent holds opaque handles (RemoteObject). A callable of the parent passed to the child (the f of
numerical_gradient) becomes a handle the child calls back through the same socket.

Arrays keep the semantics the tests rely on: the same array of the child always arrives as the same array
object of the parent (so `layer.get_parameters()[0][0] is layer.W`), and an array known to both sides is kept
in step: whatever either side writes into it in place (a test setting a gradient, an optimizer updating a
parameter) is copied to the other side before the next message is handled.

The child runs with a clean environment, no standard input or output, its own session, resource limits and a
deadline; `stop()` kills it and every process it started (the parent is their subreaper).
"""

import argparse
import builtins
import ctypes
import io
import json
import math
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from pathlib import Path

import numpy as np

from . import ONE_BLAS_THREAD
from .course.places import Place, in_dump, inside

MAX_MESSAGE_BYTES = 1 << 30
MAX_ARRAY_ELEMENTS = 50_000_000
ALLOWED_KINDS = "biuf"  # bool, signed and unsigned integers, floats
ERRORS = {name: getattr(builtins, name) for name in (
    "ValueError", "TypeError", "IndexError", "KeyError", "NotImplementedError", "ZeroDivisionError",
    "AttributeError", "RuntimeError", "FloatingPointError", "OverflowError", "ArithmeticError", "LookupError",
    "RecursionError", "MemoryError", "UnboundLocalError", "NameError")}
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


class SandboxError(Exception):
    """The child cannot be reached: it died, timed out or broke the protocol. The message says which."""


class ChildDied(SandboxError):
    pass


class CallTimeout(SandboxError):
    """The child did not answer in time; place: where it was then (a Place), or None."""

    def __init__(self, message, place=None):
        super().__init__(message)
        self.place = place


def stuck_text(place):
    return f": it was running {place.file} line {place.line} ({place.function})" if place else ""


class RemoteError(Exception):
    """An exception of the implementation with no built-in counterpart here (SystemExit, KeyboardInterrupt,
    pytest's outcomes, the student's own classes): its type name and message, never the object itself."""


# ---------------------------------------------------------------- framing

def _read_exactly(sock, size, deadline, on_timeout=None):
    def timeout():
        place = on_timeout() if on_timeout else None
        return CallTimeout("the implementation did not answer before the deadline" + stuck_text(place), place)
    chunks, left = [], size
    while left:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise timeout()
            sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except socket.timeout:
            raise timeout() from None
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
        self.on_timeout = None  # returns where the child was (a Place or None) when a read times out

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
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SandboxError(f"a malformed message ({error})") from None
        if not isinstance(header, dict) or not isinstance(header.get("blobs"), list) or \
                not all(isinstance(n, int) and 0 <= n <= MAX_MESSAGE_BYTES for n in header["blobs"]):
            raise SandboxError("a malformed message (no list of blob sizes)")
        arrays = [read_array(_read_exactly(self.sock, n, self.deadline)) for n in header["blobs"]]
        return header, arrays


# ---------------------------------------------------------------- arrays kept in step on both sides

class Mirrors:
    """The arrays this side shares with the other, by key, with their content at the last sync.

    This side's own arrays (keys starting with its prefix) are held weakly: when one dies here, the other side
    is told (dropped) and lets go of its copy. The other side's arrays are held strongly until it says so, so a
    key the other side sends always names an array this side still has; but when nothing here but this table
    holds one any more, this side lets go of it as it next speaks and tells the other side (released), which
    then stops sending its changes (a model's parameters, updated at every training step, stop crossing once
    the tests no longer hold them). Only one side speaks at a time, so the other side learns of a release
    before it says anything more: it never names a released key again (it shares the array anew if need be).
    """

    def __init__(self, prefix):
        self.prefix, self.count = prefix, 0
        self.entries = {}  # key -> [function returning the array or None, bytes at the last sync]
        self.key_of = {}  # id(array) -> key
        self.dropped = []  # own keys whose arrays died since the last message
        self.released = []  # the other side's keys let go of since the last message

    def _register(self, key, array, own):
        ident = id(array)
        if own:
            def forget(_, key=key, ident=ident):
                if self.entries.pop(key, None) is not None:
                    self.dropped.append(key)
                if self.key_of.get(ident) == key:
                    del self.key_of[ident]
            holder = weakref.ref(array, forget)
        else:
            holder = (lambda a: lambda: a)(array)
        self.entries[key] = [holder, array.tobytes()]
        self.key_of[ident] = key

    def known(self, array):
        key = self.key_of.get(id(array))
        entry = self.entries.get(key) if key else None
        return key if entry is not None and entry[0]() is array else None

    def share(self, array):
        """(key, is_new) for an array of this side about to cross."""
        key = self.known(array)
        if key is not None:
            return key, False
        self.count += 1
        key = f"{self.prefix}{self.count}"
        self._register(key, array, own=True)
        return key, True

    def adopt(self, key, array):
        """Hold the other side's array under its key (a key of ours coming back is a protocol error)."""
        if key.startswith(self.prefix) or not key[:1].isalpha():
            raise SandboxError(f"the other side sent new data under the key {key!r}")
        self._register(key, array, own=False)

    def local(self, key):
        entry = self.entries.get(key)
        return entry[0]() if entry is not None else None

    def _untrack(self, key):
        """Stop sharing the array under key (if any); the array itself lives on, unshared."""
        entry = self.entries.pop(key, None)
        if entry is not None:
            array = entry[0]()
            if array is not None and self.key_of.get(id(array)) == key:
                del self.key_of[id(array)]

    def release(self, keys):
        """The other side's arrays it no longer shares (dropped): forget them (this side's copies live on)."""
        for key in keys:
            if isinstance(key, str) and not key.startswith(self.prefix):
                self._untrack(key)

    def take_dropped(self):
        dropped, self.dropped = self.dropped, []
        return dropped

    def release_unused(self):
        """Let go of the other side's arrays that nothing but this table holds; their keys, to tell it."""
        for key, entry in list(self.entries.items()):
            if key.startswith(self.prefix):
                continue
            array = entry[0]()
            unused = sys.getrefcount(array) <= 3  # the holder's cell, `array` here, and getrefcount's argument
            del array
            if unused:
                self._untrack(key)
                self.released.append(key)

    def take_released(self):
        released, self.released = self.released, []
        return released

    def forget_own(self, keys):
        """This side's arrays the other side let go of: stop tracking them (they live on here, unshared)."""
        for key in keys:
            if isinstance(key, str) and key.startswith(self.prefix):
                self._untrack(key)

    def changed(self):
        """[(key, array)] of the shared arrays written since the last sync; marks them synced."""
        result = []
        for key, entry in list(self.entries.items()):
            array = entry[0]()
            if array is None:
                continue
            data = array.tobytes()
            if data != entry[1]:
                entry[1] = data
                result.append((key, array))
        return result

    def apply(self, key, value):
        """Write the other side's new content of a shared array into this side's array, in place."""
        array = self.local(key)
        if array is None:
            return
        if array.shape != value.shape or array.dtype != value.dtype:
            raise SandboxError(f"a shared array changed from {array.dtype}{array.shape} to {value.dtype}"
                               f"{value.shape} in place, which cannot happen")
        if array.flags.writeable:
            array[...] = value
        self.entries[key][1] = array.tobytes()

    def clear(self):
        self.entries.clear()
        self.key_of.clear()
        self.dropped.clear()
        self.released.clear()


# ---------------------------------------------------------------- one side of the conversation

class Endpoint:
    """What both sides share: encoding values, sending requests and serving the other side's while waiting."""

    def __init__(self, channel, prefix):
        self.channel = channel
        self.mirrors = Mirrors(prefix)
        self.next_id = 0

    # encoding ---------------------------------------------------------
    def encode(self, value, arrays, depth=0):
        if depth > 50:
            raise TypeError("a value nested more than 50 levels deep")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, np.integer):
            return int(value)
        if isinstance(value, float) and not isinstance(value, np.floating):
            return value if math.isfinite(value) else {"$float": repr(float(value))}
        if isinstance(value, np.generic):
            array = np.asarray(value)
            if array.dtype.kind not in ALLOWED_KINDS:
                return self.encode_object(value)
            arrays.append(array)
            return {"$scalar": len(arrays) - 1}
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in ALLOWED_KINDS or value.dtype.fields is not None:
                return self.encode_object(value)
            if type(value) is not np.ndarray:  # a subclass crosses as its plain data, without identity
                arrays.append(np.asarray(value).view(np.ndarray))
                return {"$copy": len(arrays) - 1}
            key, new = self.mirrors.share(value)
            if new:
                arrays.append(value)
                return {"$array": key, "data": len(arrays) - 1}
            return {"$array": key}
        if type(value) in (list, tuple):
            return {"$list" if type(value) is list else "$tuple": [self.encode(v, arrays, depth + 1) for v in value]}
        if type(value) is dict:
            return {"$dict": [[self.encode(k, arrays, depth + 1), self.encode(v, arrays, depth + 1)]
                              for k, v in value.items()]}
        return self.encode_object(value)

    def decode(self, value, arrays, depth=0):
        if depth > 50:
            raise SandboxError("a value nested more than 50 levels deep")
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list) and depth == 0:
            raise SandboxError("a malformed value")
        if not isinstance(value, dict) or len(value) == 0:
            raise SandboxError("a malformed value")
        if "$float" in value:
            if value["$float"] not in ("nan", "inf", "-inf"):
                raise SandboxError("a malformed float")
            return float(value["$float"])
        if "$scalar" in value:
            return self._array_at(arrays, value["$scalar"])[()]
        if "$copy" in value:
            return self._array_at(arrays, value["$copy"])
        if "$array" in value:
            key = value["$array"]
            if not isinstance(key, str):
                raise SandboxError("a malformed array key")
            if "data" in value:
                array = self._array_at(arrays, value["data"])
                self.mirrors.adopt(key, array)
                return array
            array = self.mirrors.local(key)
            if array is None:
                raise SandboxError(f"an array ({key}) that was never shared or was dropped")
            return array
        if "$list" in value or "$tuple" in value:
            items = value.get("$list", value.get("$tuple"))
            if not isinstance(items, list):
                raise SandboxError("a malformed list")
            decoded = [self.decode(v, arrays, depth + 1) for v in items]
            return decoded if "$list" in value else tuple(decoded)
        if "$dict" in value:
            pairs = value["$dict"]
            if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise SandboxError("a malformed dict")
            result = {}
            for k, v in pairs:
                key = self.decode(k, arrays, depth + 1)
                if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                    raise SandboxError("a dict key that is not plain data")
                result[key] = self.decode(v, arrays, depth + 1)
            return result
        return self.decode_object(value)

    @staticmethod
    def _array_at(arrays, index):
        if not isinstance(index, int) or not 0 <= index < len(arrays):
            raise SandboxError("a malformed array reference")
        return arrays[index]

    # messages ---------------------------------------------------------
    def _updates(self, arrays):
        updates = []
        for key, array in self.mirrors.changed():
            arrays.append(array)
            updates.append([key, len(arrays) - 1])
        return updates

    def _apply_updates(self, header, arrays):
        dropped = header.get("dropped", [])
        if not isinstance(dropped, list):
            raise SandboxError("a malformed list of dropped arrays")
        self.mirrors.release(dropped)
        updates = header.get("updates", [])
        if not isinstance(updates, list):
            raise SandboxError("a malformed update list")
        for item in updates:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise SandboxError("a malformed update")
            self.mirrors.apply(item[0], self._array_at(arrays, item[1]))
        released = header.get("released", [])  # after the updates, which may still write into them
        if not isinstance(released, list):
            raise SandboxError("a malformed list of released arrays")
        self.mirrors.forget_own(released)

    def send_message(self, header, build):
        """Send header plus what build(arrays) adds, with this side's pending array updates."""
        arrays = []
        updates = self._updates(arrays)  # first: what was written into an array counts even if it is let go
        self.mirrors.release_unused()
        header = dict(header, **build(arrays))
        header["updates"] = updates
        header["dropped"] = self.mirrors.take_dropped()
        header["released"] = self.mirrors.take_released()
        self.channel.send(header, arrays)

    def request(self, op, **fields):
        """Send a request and wait for its answer, serving the other side's requests meanwhile."""
        self.next_id += 1
        ident = self.next_id

        def build(arrays):
            return {key: self.encode(value, arrays) for key, value in fields.items()}

        self.send_message({"kind": "request", "id": ident, "op": op}, build)
        while True:
            header, arrays = self.channel.recv()
            self._apply_updates(header, arrays)
            if header.get("kind") == "request":
                self.serve_one(header, arrays)
                continue
            if header.get("id") != ident:
                raise SandboxError("an answer to a question that was not asked")
            if header.get("kind") == "result":
                return self.decode(header.get("value"), arrays)
            if header.get("kind") == "error":
                raise self.error_from(header.get("error"))
            raise SandboxError("a malformed answer")

    def serve_one(self, header, arrays):
        ident = header.get("id")
        try:
            args = self.decode(header.get("args", {"$list": []}), arrays)
            kwargs = self.decode(header.get("kwargs", {"$dict": []}), arrays)
            target = self.decode(header.get("target"), arrays)
            value = self.perform(header.get("op"), target, header.get("name"), args, kwargs)
        except SandboxError:
            raise
        except BaseException as error:  # noqa: B036 - whatever the code on this side raised goes back as data
            if isinstance(error, KeyboardInterrupt) and self.prefix_is_parent():
                raise
            description = self.describe(error)
            self.send_message({"kind": "error", "id": ident}, lambda arrays: {"error": description})
            return
        self.send_message({"kind": "result", "id": ident}, lambda arrays: {"value": self.encode(value, arrays)})

    def prefix_is_parent(self):
        return self.mirrors.prefix == "p"

    def outside(self, text):
        return text

    @staticmethod
    def describe(error):
        frames = traceback.extract_tb(error.__traceback__)
        where = next(([f.filename, f.lineno, f.name] for f in reversed(frames)
                      if "/kata/" not in f.filename.replace(os.sep, "/")), None)
        try:
            message = str(error)
        except BaseException:  # noqa: B036 - a __str__ that raises is the student's problem, not ours
            message = "(its message could not be printed)"
        return {"type": type(error).__name__, "message": message[:4000], "where": where}

    def error_from(self, description):
        if not isinstance(description, dict):
            return SandboxError("a malformed error")
        name = str(description.get("type", "Exception"))[:100]
        message = self.outside(str(description.get("message", ""))[:4000])
        place = Place.from_json(description.get("where"))
        if place is not None:
            place = Place(self.outside(place.file), place.line, place.function)
        text = f"{message} (raised at {place})" if place else message
        cls = ERRORS.get(name)
        try:
            error = RemoteError(f"{name}: {text}") if cls is None else cls(text) if cls is not KeyError else KeyError(text)
        except Exception:
            error = RemoteError(f"{name}: {text}")
        error.remote_message, error.remote_place = message, place
        return error


# ---------------------------------------------------------------- the parent's side

class RemoteObject:
    """A handle on an object of the child: attribute access, assignment and calls go there."""

    __slots__ = ("_box", "_handle", "_type", "__weakref__")

    def __init__(self, box, handle, type_name):
        object.__setattr__(self, "_box", box)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_type", type_name)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._box.endpoint.request("getattr", target=self, name=name)

    def __setattr__(self, name, value):
        self._box.endpoint.request("setattr", target=self, name=name, args=[value])

    def __call__(self, *args, **kwargs):
        return self._box.endpoint.request("call", target=self, args=list(args), kwargs=dict(kwargs))

    def __getitem__(self, index):
        return self._box.endpoint.request("getitem", target=self, args=[index])

    def __len__(self):
        return self._box.endpoint.request("len", target=self)

    def __iter__(self):
        return iter([self[i] for i in range(len(self))])

    def __repr__(self):
        return f"<{self._type} in the sandbox>"


class ParentEndpoint(Endpoint):
    def __init__(self, box, channel):
        super().__init__(channel, "p")
        self.box = box
        self.proxies = weakref.WeakValueDictionary()  # handle -> RemoteObject
        self.callbacks = {}  # handle -> callable of the parent

    def outside(self, text):
        return self.box._inside_to_outside(text) if isinstance(text, str) else None

    def encode_object(self, value):
        if isinstance(value, RemoteObject):
            return {"$object": value._handle}
        if callable(value):
            handle = f"f{id(value)}"
            self.callbacks[handle] = value
            return {"$callback": handle}
        raise TypeError(f"a {type(value).__name__} cannot be passed to the implementation (only numbers, strings, "
                        f"arrays, lists, tuples, dicts, functions and its own objects)")

    def decode_object(self, value):
        handle = value.get("$object")
        if isinstance(handle, str):
            proxy = self.proxies.get(handle)
            if proxy is None:
                proxy = RemoteObject(self.box, handle, str(value.get("type", "object"))[:100])
                self.proxies[handle] = proxy
            return proxy
        raise SandboxError("a malformed value")

    def perform(self, op, target, name, args, kwargs):
        if op != "callback":
            raise SandboxError(f"the implementation asked the tests for {op!r}")
        function = self.callbacks.get(name)
        if function is None:
            raise SandboxError("the implementation called back a function it was never given")
        return function(*args, **kwargs)

    def serve_one(self, header, arrays):
        if header.get("op") == "callback":
            header = dict(header, target=None)
        super().serve_one(header, arrays)


# ---------------------------------------------------------------- the child's side

class ChildEndpoint(Endpoint):
    def __init__(self, channel, module):
        super().__init__(channel, "c")
        self.objects = {"$module": module}  # handle -> object (strong: the parent may ask again)
        self.handle_of = {id(module): "$module"}

    def encode_object(self, value):
        handle = self.handle_of.get(id(value))
        if handle is None or self.objects.get(handle) is not value:
            handle = f"o{len(self.objects)}"
            self.objects[handle] = value
            self.handle_of[id(value)] = handle
        return {"$object": handle, "type": type(value).__name__}

    def decode_object(self, value):
        if "$object" in value:
            if value["$object"] not in self.objects:
                raise SandboxError("an object handle that was never given")
            return self.objects[value["$object"]]
        if "$callback" in value:
            handle = value["$callback"]
            endpoint = self

            def call_back(*args, **kwargs):
                return endpoint.request("callback", name=handle, args=list(args), kwargs=dict(kwargs))
            return call_back
        raise SandboxError("a malformed value")

    def perform(self, op, target, name, args, kwargs):
        if op == "getattr":
            if not isinstance(name, str) or name.startswith("__"):
                raise AttributeError(f"{name!r}: not an attribute the tests may read")
            return getattr(target, name)
        if op == "setattr":
            if not isinstance(name, str) or name.startswith("__"):
                raise AttributeError(f"{name!r}: not an attribute the tests may set")
            setattr(target, name, args[0])
            return None
        if op == "call":
            return target(*args, **kwargs)
        if op == "getitem":
            return target[args[0]]
        if op == "len":
            return len(target)
        if op == "seed":  # every test starts from the same random state, as in one process
            np.random.seed(args[0])
            return None
        if op == "reset":
            self.objects = {"$module": self.objects["$module"]}
            self.handle_of = {id(self.objects["$module"]): "$module"}
            self.mirrors.clear()
            return None
        raise SandboxError(f"unknown request {op!r}")


def serve(fd, folder, startup_seconds=None):
    """The child's main loop: import the implementation in folder, then answer requests until the end."""
    sock = socket.socket(fileno=fd)
    channel = Channel(sock)
    import faulthandler
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=False)  # the parent asks where we are
    if startup_seconds:  # where an import that hangs is, even if it ignores SIGUSR1: dumped just before the deadline
        faulthandler.dump_traceback_later(max(startup_seconds - 0.3, startup_seconds / 2), file=sys.stderr)
    from .course.implementation import ImplementationError, load
    try:
        module = load(folder)
        faulthandler.cancel_dump_traceback_later()
        endpoint = ChildEndpoint(channel, module)
        channel.send({"kind": "ready"}, [])
    except ImplementationError as error:
        faulthandler.cancel_dump_traceback_later()
        from .course.places import import_failure
        try:
            verdict = import_failure(error.__cause__, Path(folder).resolve())
        except Exception:  # noqa: BLE001 - the message alone is still worth sending
            verdict = None
        channel.send({"kind": "broken", "message": str(error)[:4000], "verdict": verdict}, [])
        return
    while True:
        try:
            header, arrays = channel.recv()
        except ChildDied:
            return
        endpoint._apply_updates(header, arrays)
        if header.get("kind") != "request":
            return
        endpoint.serve_one(header, arrays)


# ---------------------------------------------------------------- starting and stopping the child

def _prctl(option, value):
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class Limits:
    memory_bytes = 3 << 30  # address space: numpy needs a few hundred MB; a memory bomb gets MemoryError
    cpu_seconds = 300  # CPU time of the child over its life; the wall-clock deadline usually comes first
    open_files = 64
    processes = 0  # beyond those the user already has (RLIMIT_NPROC; the kernel exempts root)
    max_pids = 32  # every process and thread of the child together, where a pids cgroup can be made (root)


# ---------------------------------------------------------------- isolation by namespaces (when run as root)

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWPID = 0x00020000, 0x08000000, 0x40000000, 0x20000000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
INSIDE = "/tmp/submission"  # where the child sees the implementation's folder
CGROUP_PIDS = Path("/sys/fs/cgroup/pids")


def hidden_paths():
    """What the child must not read: the reference, the tests (expected values), the repository's history."""
    from .course.repository import ROOT
    return [path for path in (ROOT / "solutions", ROOT / "tests", ROOT / ".git") if path.exists()]


def _libc_call(name, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{name}: {os.strerror(error)}")


def _mount(source, target, fstype, flags, data=None):
    _libc_call("mount", source.encode() if source else None, str(target).encode(),
               fstype.encode() if fstype else None, ctypes.c_ulong(flags), data.encode() if data else None)


MS_NOEXEC = 8
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
DEVICES = ("null", "zero", "random", "urandom")


SANDBOX_USERS = ("kata-sandbox", "nobody")  # the child runs as the first that exists (when the grader is root)


def sandbox_user():
    """(uid, gid, name) of the unprivileged user the child runs as, or None where there is none."""
    import pwd
    for name in SANDBOX_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return entry.pw_uid, entry.pw_gid, name
    return None


def _isolate(folder, hide, user=None, repository="/"):
    """(In the child, before exec.) New mount, PID, network and IPC namespaces, and a view of the machine in which
    the implementation can read little and change nothing:

    - PID 1 of the new PID namespace runs the implementation (this process forks it and only waits), with a
      /proc of its own: no other process of the machine can be seen or reached;
    - /tmp is empty but for the implementation's folder (read-only); the hidden paths (the reference, the tests,
      .git) are empty; /sys is empty; /dev holds null, zero, random and urandom only;
    - every other mount is read-only, and every capability is dropped (root without capabilities cannot mount,
      unmount, trace or load anything, and no program it runs can give them back).

    As root, user (uid, gid, name) is who the implementation then runs as. Not as root (user None), a user
    namespace of its own gives the capabilities to build that view; it maps only the grader's own uid, so the
    implementation runs as the grader's user, without any capability once exec'd, in a view it cannot undo (the
    mounts that hide are locked to it: a user namespace of its own would only get copies it cannot unmount).
    """
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
    if os.geteuid() != 0:
        uid, gid = os.getuid(), os.getgid()
        _libc_call("unshare", CLONE_NEWUSER | flags)
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as stream:
                stream.write(text)
    else:
        _libc_call("unshare", flags)
    pid = os.fork()
    if pid:  # the waiter: its exit status is the server's; it keeps no descriptor of the grader open
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the grader's mounts
    keep = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    devices = {name: os.open(f"/dev/{name}", os.O_RDONLY) for name in DEVICES}
    # the grader's work folders and the homes go; what Python and this package need to run is bound back
    needed = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), str(repository)})
    for top, size in (("/tmp", "32m"), ("/root", "64k"), ("/home", "64k")):
        if os.path.isdir(top):
            _empty_but(top, needed, size)
    import shutil  # a copy the sandbox user may read, whoever owns the grader's folder; nothing can write it
    shutil.copytree(f"/proc/self/fd/{keep}", INSIDE, ignore=shutil.ignore_patterns("__pycache__"))
    os.close(keep)
    for root, dirs, files in os.walk(INSIDE):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        os.chmod(root, 0o555)
    _mount(INSIDE, INSIDE, None, MS_BIND)  # a mount of its own, made read-only below (its owner cannot chmod it)
    for path in hide:
        _mount("none", str(path), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=555")
    _mount("none", "/sys", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=555")
    for secret in ("/etc/shadow", "/etc/gshadow"):
        if os.path.exists(secret):
            _mount("/dev/null", secret, None, MS_BIND)
    _mount("none", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for name, fd in devices.items():
        open(f"/dev/{name}", "w").close()
        _mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, MS_BIND)
        os.close(fd)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # this namespace's processes only
    with open("/proc/self/mountinfo") as stream:
        points = [line.split()[4].replace("\\040", " ") for line in stream]
    for point in points:  # read-only everywhere but /tmp (and /tmp/submission is read-only too)
        if point in ("/tmp", "/proc") or point.startswith("/proc/"):
            continue
        try:
            _remount_read_only(point)
        except OSError:
            if point in ("/", INSIDE) or any(point == str(path) for path in hide):
                raise
    _mount(None, "/proc", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir("/tmp")
    with open("/proc/sys/kernel/cap_last_cap") as stream:
        last = int(stream.read())
    for capability in range(last + 1):
        _prctl_checked(PR_CAPBSET_DROP, capability)
    if user is not None:  # an unprivileged user: root's files (0600) and everything not world-readable are closed
        _become(user)
    _prctl_checked(PR_SET_NO_NEW_PRIVS, 1)


STAGED = "submission"  # the implementation's folder in the child's work folder (root without namespaces)
_USER_CHECKS = {}  # (named user, interpreter) -> what _check_users found, once per process


def _user_name(uid):
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


TRANSIENT_UIDS = (0x7F000000, 0x7FFF0000)  # uids no account has: root without namespaces gives each child one


def _transient_user():
    """(uid, gid, name) of a uid that no account and no running process has. A child running as it can signal
    no other process (the other children of the same grading included), and reads only what everyone may."""
    import pwd
    import random
    busy = _process_uids()
    while True:
        uid = random.SystemRandom().randrange(*TRANSIENT_UIDS)
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if uid not in busy:
                return uid, uid, f"uid {uid} (a uid of its own)"


def _staged_for(named, folder, workdir):
    """(Root without namespaces.) Make workdir a folder another user can run the child from (a copy of this
    package and of the implementation's folder, which only root can change), and choose who the child runs as: a
    uid of its own (_transient_user) or, where the kernel refuses those (a container mapping few uids), named.
    Checked once: that user can run Python with NumPy, and cannot read the hidden paths, which are closed to
    other users if need be (chmod go-rwx). (user or None for root, whether the hidden paths are closed to it,
    what was done)."""
    import shutil

    from .course.repository import ROOT
    work = Path(workdir)
    shutil.copytree(ROOT / "kata", work / "kata")  # the grader's own package, __pycache__ included (no compiling)
    shutil.copy2(ROOT / "manifest.toml", work / "manifest.toml")
    shutil.copytree(folder, work / STAGED, ignore=shutil.ignore_patterns("__pycache__"))
    for root, _, files in os.walk(work):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        os.chmod(root, 0o555)
    key = (named, sys.executable)
    if key not in _USER_CHECKS:
        _USER_CHECKS[key] = _check_users(named, work)
    who, hidden, why = _USER_CHECKS[key]
    return (_transient_user() if who == "transient" else who), hidden, why


def _check_users(named, work):
    """(For _staged_for.) ("transient", named or None; whether the hidden paths are closed to it; what was done)."""
    code = ("import json, os, sys; sys.path.insert(0, sys.argv[1]); import numpy, kata.sandbox\n"
            "def readable(path):\n    try:\n        os.listdir(path)\n        return True\n"
            "    except OSError:\n        return False\n"
            "print(json.dumps([path for path in sys.argv[2:] if readable(path)]))")

    def readable(user):
        try:
            done = subprocess.run([sys.executable, "-I", "-B", "-c", code, str(work),
                                   *map(str, hidden_paths())], stdin=subprocess.DEVNULL, capture_output=True,
                                  cwd=work, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **ONE_BLAS_THREAD},
                                  timeout=120, preexec_fn=lambda: _become(user))
        except (OSError, subprocess.SubprocessError) as error:
            return None, f"{user[2]} cannot run {sys.executable} ({error})"
        if done.returncode != 0:
            last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1][:300]
            return None, f"{user[2]} cannot run {sys.executable} with NumPy here ({last})"
        return json.loads(done.stdout), ""

    who, user = "transient", _transient_user()
    found, why = readable(user)
    if found is None and named is not None:
        who, user = named, named
        found, why = readable(user)
    if found is None:
        return None, False, f"{why}, so the child stays root"
    if found:
        for path in found:
            os.chmod(path, os.stat(path).st_mode & ~0o077)
        closed = ", ".join(Path(path).name + "/" for path in found)
        still, why = readable(user)
        if still is None:
            return None, False, f"{why}, so the child stays root"
        if still:
            return who, False, (f"it can still read {', '.join(still)} after chmod go-rwx (an ACL?): the reference "
                                f"is not hidden")
        return who, True, f"closed {closed} to other users (chmod go-rwx), so it cannot read them"
    return who, True, "the reference and the tests are closed to it by file permissions"


def _remount_read_only(point):
    """Make the mount at point read-only, keeping its nosuid, nodev and noexec (which a user namespace may not
    drop: without them the remount would be refused)."""
    try:
        kept = os.statvfs(point).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)  # ST_ and MS_ values agree here
    except OSError:
        kept = 0
    _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | kept)


def _become(user):
    """Run as user (uid, gid, name) from now on, in no supplementary group (root only)."""
    os.setgroups([])
    os.setgid(user[1])
    os.setuid(user[0])


def _empty_but(top, keep, size):
    """(In _isolate.) An empty tmpfs over top, with the paths of keep that lie inside it bound back in place."""
    kept = []
    for path in keep:
        if (path == top or path.startswith(top.rstrip("/") + "/")) and os.path.isdir(path):
            try:
                kept.append((path, os.open(path, os.O_RDONLY | os.O_DIRECTORY)))
            except PermissionError:  # out of this user's reach anyway
                pass
    _mount("none", top, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777" if top == "/tmp" else
           f"size={size},mode=755")
    for path, fd in kept:
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
        os.close(fd)


def _prctl_checked(option, value):
    if not _prctl(option, value):
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


def _process_uids():
    """{uid: how many processes of the machine (that this process can see) run as it}."""
    import collections
    uids = collections.Counter()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                uids[os.stat(f"/proc/{entry}").st_uid] += 1
            except OSError:
                pass
    return uids


def _user_processes(uid):
    return _process_uids()[uid]


def _limit_child(limits, nproc, isolation=None):
    def apply():
        if isolation is not None:
            folder, hide, cgroup, user = isolation
            if cgroup is not None:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))
            if folder is not None:
                _isolate(folder, hide, user, str(Path(__file__).resolve().parent.parent))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # no file can be written (results, fake reports)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if isolation is not None and isolation[0] is None and isolation[3] is not None:  # root, no namespaces
            _become(isolation[3])
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # (setuid clears it)
            _prctl_checked(PR_SET_NO_NEW_PRIVS, 1)
    return apply


def _children_of(pid, zombies=False):
    """The children of pid (zombies, which are dead and only wait to be reaped, only when asked for)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stream:
                    fields = stream.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and (zombies or fields[0] != "Z"):
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


class Sandbox:
    """A child process serving one implementation folder. Use as a context manager, or start() and stop()."""

    def __init__(self, folder, limits=Limits(), startup_seconds=60.0):
        self.folder = str(Path(folder).resolve())
        self.limits = limits
        self.startup_seconds = startup_seconds
        self.process = None
        self.endpoint = None
        self.broken = None  # the import error of the implementation, if it did not import
        self.broken_verdict = None  # where it failed: {"where": [file, line], "culprits": [...], "error": ...}
        self.workdir = None

    def start(self):
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of the child come to us, so stop() can reap them
        self.known_children = set(_children_of(os.getpid()))
        parent_sock, child_sock = socket.socketpair()
        self.workdir = tempfile.mkdtemp(prefix="kata-sandbox-")
        self.token = os.urandom(8).hex()
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.workdir, **ONE_BLAS_THREAD,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "KATA_SANDBOX": self.token}
        nproc = None if os.geteuid() == 0 else _user_processes(os.getuid()) + 8 + self.limits.processes
        self.cgroup = self._make_cgroup() if os.geteuid() == 0 else None

        def launch(package_home, folder_arg, cwd, child_env, nproc, isolation):
            """The child: `main()` of the kata package found in package_home (whatever `kata` its environment
            would find by itself), serving folder_arg."""
            return subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", f"import sys; sys.path.insert(0, {package_home!r}); "
                 f"from kata.sandbox import main; main()", "--fd", str(child_sock.fileno()),
                 "--startup", f"{self.startup_seconds:g}", folder_arg],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd, env=child_env,
                pass_fds=(child_sock.fileno(),), start_new_session=True,
                preexec_fn=_limit_child(self.limits, nproc, isolation))

        home = str(Path(__file__).resolve().parent.parent)  # the grader's own package
        self.isolated, self.hidden, self.inside, self.user = False, False, self.folder, _user_name(os.geteuid())
        user = sandbox_user() if os.geteuid() == 0 else None
        if user is not None and self.cgroup is None:  # (a per-user count: other sandboxes share it)
            nproc = _user_processes(user[0]) + self.limits.max_pids
        if os.environ.get("KATA_SANDBOX_NAMESPACES", "1") == "0":
            self.isolation_note = "namespaces turned off by KATA_SANDBOX_NAMESPACES=0"
        else:
            try:
                self.process = launch(home, INSIDE, "/", dict(env, HOME="/tmp"), nproc,
                                      (self.folder, hidden_paths(), self.cgroup, user))
                self.isolated, self.hidden, self.inside = True, True, INSIDE
                self.user = user[2] if user else self.user
                kinds = "mount, PID, network, IPC" + ("" if os.geteuid() == 0 else ", user")
                self.isolation_note = f"namespaces: {kinds}; user {self.user}"
            except (subprocess.SubprocessError, OSError) as error:
                self.isolation_note = f"namespaces could not be made ({error})"
                self.process = None
        if self.process is None and os.geteuid() == 0:  # root without namespaces: another uid, files closed to it
            user, hidden, why = _staged_for(user, self.folder, self.workdir)
            if user is not None:
                if self.cgroup is None:
                    nproc = _user_processes(user[0]) + self.limits.max_pids
                self.process = launch(self.workdir, STAGED, self.workdir, env, nproc, (None, None, self.cgroup, user))
                self.hidden, self.inside, self.user = hidden, str(Path(self.workdir) / STAGED), user[2]
            self.isolation_note += f"; user {self.user}: {why}"
        elif self.process is None:
            self.isolation_note += f"; user {self.user}"
        if self.process is None:
            self.process = launch(home, self.folder, self.workdir, env, nproc, (None, None, self.cgroup, None))
        child_sock.close()
        self.stderr_tail = bytearray()
        threading.Thread(target=self._drain, args=(self.process.stderr, self.stderr_tail), daemon=True).start()
        self.endpoint = ParentEndpoint(self, Channel(parent_sock))
        self.endpoint.channel.on_timeout = self._timed_out
        self.endpoint.channel.deadline = time.monotonic() + self.startup_seconds
        try:
            header, _ = self.endpoint.channel.recv()
        except ChildDied:
            code = self.process.wait(timeout=5) if self.process is not None else None
            self.stop()
            raise ChildDied(f"the implementation's process ended while importing it (exit code {code}): does the "
                            f"code call exit() or os._exit() at import?") from None
        except CallTimeout as error:
            self.stop()
            raise CallTimeout(f"importing the implementation did not finish within {self.startup_seconds:g} s"
                              f"{stuck_text(error.place)}: an infinite loop at import?", error.place) from None
        except SandboxError:
            self.stop()
            raise
        finally:
            self.endpoint.channel.deadline = None
        if header.get("kind") == "broken":
            message = str(header.get("message", "the implementation did not import"))[:4000]
            self.broken = self._inside_to_outside(message)
            verdict = header.get("verdict")
            self.broken_verdict = verdict if _plain_verdict(verdict) else None
            if self.broken_verdict:
                self.broken_verdict["error"] = self._inside_to_outside(self.broken_verdict["error"])
        elif header.get("kind") != "ready":
            self.stop()
            raise SandboxError("the implementation's process did not start properly")
        return self

    def _make_cgroup(self):
        """A pids cgroup limiting every process of the child together (a fork bomb), or None where none can be."""
        try:
            cgroup = CGROUP_PIDS / f"kata-{self.token}"
            cgroup.mkdir()
            (cgroup / "pids.max").write_text(str(self.limits.max_pids))
            return cgroup
        except OSError:
            return None

    def _inside_to_outside(self, text):
        """The child's paths (/tmp/submission/loss.py) as the grader knows them."""
        return text.replace(self.inside, self.folder) if isinstance(text, str) and self.inside != self.folder \
            else text

    @staticmethod
    def _drain(stream, tail, keep=1 << 16):
        """Read the child's stderr as it comes (a flood never blocks it), keeping the last keep bytes."""
        while True:
            try:
                chunk = stream.read1(1 << 16)
            except (OSError, ValueError):  # closed by stop()
                return
            if not chunk:
                return
            tail += chunk
            del tail[:-keep]

    def _where_stuck(self):
        """Where the child is (a Place in the implementation's folder), from a traceback it dumps on SIGUSR1 (or
        has dumped by itself, when its import outlived the start-up deadline), or None."""
        if not self.alive():
            return None
        mark = len(self.stderr_tail)
        # in a PID namespace the server is the child of the process we started (which only waits for it)
        server = (_children_of(self.process.pid) or [None])[0] if self.isolated else self.process.pid
        try:
            os.kill(server, signal.SIGUSR1)
        except (OSError, TypeError):
            return None
        for _ in range(30):
            time.sleep(0.01)
            text = bytes(self.stderr_tail[mark:]).decode(errors="replace")
            if "File " in text and text.rstrip().endswith(")") is False or text.count("\n") > 1:
                break
        text = self._inside_to_outside(bytes(self.stderr_tail).decode(errors="replace"))
        # the last dump: on SIGUSR1 ("Stack ..." or "Current thread ..."), or the child's own before its deadline
        starts = [text.rfind(mark) for mark in ("Stack (most recent", "Current thread", "Timeout (")]
        text = text[max(0, *starts):]
        spot = in_dump(text, self.folder)
        return Place(str(Path(self.folder) / Path(spot.file).name), spot.line, spot.function) if spot else None

    def _timed_out(self):
        """Where the child was when its time ran out; then it is killed (a child past its deadline is useless)."""
        where = self._where_stuck()
        self.stop()
        return where

    def implementation(self):
        """The implementation's package as a RemoteObject."""
        return self.endpoint.decode_object({"$object": "$module", "type": "module"})

    def set_deadline(self, seconds):
        """Every answer from now on must come within seconds of now (None: no deadline)."""
        self.endpoint.channel.deadline = None if seconds is None else time.monotonic() + seconds

    def reset(self):
        """Forget every object and array shared so far (between two tests)."""
        self.endpoint.request("reset")
        self.endpoint.mirrors.clear()
        self.endpoint.callbacks.clear()
        self.endpoint.proxies.clear()

    def seed(self, value=0):
        """Seed the child's global NumPy generator (what an implementation's initialisation draws from)."""
        self.endpoint.request("seed", args=[int(value)])

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        """Kill the child, its process group and every process it left behind; reap them all."""
        if self.process is None:
            return
        pid = self.process.pid
        for attempt in range(250):  # at most about 5 s
            victims = self._descendants(pid)
            if self.process.poll() is None:
                victims.add(pid)
            if not victims and not self._cgroup_members():
                break
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for victim in victims:
                try:
                    os.kill(victim, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self._reap(victims - {pid})
            time.sleep(0.02 * (attempt > 0))
        self.process.wait()
        # orphans of the child adopted by this process (its subreaper) and dead by now: reap them
        self._reap(set(_children_of(os.getpid(), zombies=True)) - self.known_children)
        if self.endpoint is not None:
            self.endpoint.channel.sock.close()
        if self.process.stderr is not None:
            self.process.stderr.close()
        if self.workdir:
            import shutil
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.cgroup is not None:
            for _ in range(100):
                try:
                    self.cgroup.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still emptying
                    time.sleep(0.01)
        self.process = None

    def _descendants(self, root):
        """The process tree below root, every orphan that came to us since the child started, and every process
        of the child's cgroup."""
        tree, frontier = set(), [root]
        if self.cgroup is not None:
            try:
                frontier += [int(pid) for pid in (self.cgroup / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                pass
        while frontier:
            children = _children_of(frontier.pop())
            frontier += [c for c in children if c not in tree]
            tree |= set(children)
        orphans = {pid for pid in set(_children_of(os.getpid())) - self.known_children - {root}
                   if self._marked(pid)}
        return (tree | orphans) - {os.getpid()}

    def _cgroup_members(self):
        """The processes still in the child's pids cgroup (exited ones leave it at once, before being reaped)."""
        if self.cgroup is None:
            return []
        try:
            return [int(pid) for pid in (self.cgroup / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def _marked(self, pid):
        """Whether a process carries this child's token in its environment (so it was started from the child)."""
        try:
            with open(f"/proc/{pid}/environ", "rb") as stream:
                return f"KATA_SANDBOX={self.token}".encode() in stream.read().split(b"\0")
        except OSError:
            return False

    @staticmethod
    def _reap(pids):
        """Collect the exit status of those of pids that are our children (orphans we adopted)."""
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _plain_verdict(verdict):
    """Whether a child's report on a failed import has the shape grading.import_failure gives (plain data)."""
    if not isinstance(verdict, dict) or not isinstance(verdict.get("error"), str):
        return False
    inside, missing = verdict.get("inside"), verdict.get("missing")

    def frame(item):
        return isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and "/" not in item[0] \
            and (item[1] is None or isinstance(item[1], int))
    return isinstance(inside, list) and all(frame(item) for item in inside) and \
        (missing is None or (isinstance(missing, list) and len(missing) == 2
                             and all(isinstance(x, str) and "/" not in x for x in missing)))


def probe(folder, seconds):
    """{"broken": message or None, "verdict": ...}: whether folder imports, tried in a sandboxed child."""
    box = Sandbox(folder, startup_seconds=seconds)
    try:
        box.start()
    except SandboxError as error:
        stuck = getattr(error, "place", None)
        verdict = None
        if stuck and inside(stuck.file, folder):
            verdict = {"inside": [[Path(stuck.file).name, stuck.line]], "missing": None, "error": str(error)}
        return {"broken": str(error), "verdict": verdict, "isolated": box.isolated, "note": box.isolation_note}
    finally:
        box.stop()
    return {"broken": box.broken, "verdict": box.broken_verdict, "isolated": box.isolated, "note": box.isolation_note}


def main(argv=None):
    parser = argparse.ArgumentParser(description=argparse.SUPPRESS)
    parser.add_argument("--fd", type=int)
    parser.add_argument("--startup", type=float, help="(the parent's) seconds the import may take")
    parser.add_argument("--probe", metavar="OUT", help="(the grader's) write probe(folder) as JSON to OUT")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    if args.probe:
        Path(args.probe).write_text(json.dumps(probe(args.folder, args.seconds)))
        return
    serve(args.fd, args.folder, args.startup)
    os._exit(0)  # no atexit handler of the implementation runs


if __name__ == "__main__":
    main()
