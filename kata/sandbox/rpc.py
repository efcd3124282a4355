"""One side of the conversation: encoding values, sending requests and serving the other side's while waiting.

Only plain data crosses: JSON for None, bools, numbers, strings, lists, tuples and dicts, and NumPy arrays (wire.py).
Objects of the child stay in the child; the parent holds opaque handles (parent.py). A callable of the parent
passed to the child (the f of numerical_gradient) becomes a handle the child calls back through the same socket.
"""

import builtins
import math

import numpy as np

from ..course.places import Place, raised_at, trail
from .confinement import KATA_PACKAGE
from .mirrors import Mirrors
from .wire import ALLOWED_KINDS, MAX_DEPTH, RemoteError, SandboxError

TRAIL_PLACES = 16  # the most places of an error's trail sent or read
ERRORS = {name: getattr(builtins, name) for name in (
    "ValueError", "TypeError", "IndexError", "KeyError", "NotImplementedError", "ZeroDivisionError",
    "AttributeError", "RuntimeError", "FloatingPointError", "OverflowError", "ArithmeticError", "LookupError",
    "RecursionError", "MemoryError", "UnboundLocalError", "NameError")}


class Endpoint:
    """What both sides share: encoding values, sending requests and serving the other side's while waiting."""

    def __init__(self, channel, prefix):
        self.channel = channel
        self.mirrors = Mirrors(prefix)
        self.next_id = 0

    # encoding ---------------------------------------------------------
    def encode(self, value, arrays, depth=0):
        if depth > MAX_DEPTH:
            raise TypeError(f"a value nested more than {MAX_DEPTH} levels deep")
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

    # the protocol errors of the other side's data: a SandboxError for anything malformed decode() meets
    MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError,
                 MemoryError)

    def decode(self, value, arrays):
        """The value the other side encoded (arrays: the message's Blobs); SandboxError if it is malformed."""
        try:
            return self._decode(value, arrays, 0)
        except self.MALFORMED as error:
            raise SandboxError(f"a malformed value ({type(error).__name__}: {str(error)[:200]})") from None

    def _decode(self, value, arrays, depth):
        if depth > MAX_DEPTH:
            raise SandboxError(f"a value nested more than {MAX_DEPTH} levels deep")
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
            array = arrays.take(value["$scalar"])
            if array.ndim != 0:
                raise SandboxError("a malformed scalar")
            return array[()]
        if "$copy" in value:
            return arrays.take(value["$copy"])
        if "$array" in value:
            key = value["$array"]
            if not isinstance(key, str):
                raise SandboxError("a malformed array key")
            if "data" in value:
                array = arrays.take(value["data"])
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
            decoded = [self._decode(v, arrays, depth + 1) for v in items]
            return decoded if "$list" in value else tuple(decoded)
        if "$dict" in value:
            pairs = value["$dict"]
            if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise SandboxError("a malformed dict")
            result = {}
            for k, v in pairs:
                key = self._decode(k, arrays, depth + 1)
                if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                    raise SandboxError("a dict key that is not plain data")
                result[key] = self._decode(v, arrays, depth + 1)  # (TypeError: a tuple holding a list)
            return result
        return self.decode_object(value)

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
            self.mirrors.apply(item[0], arrays.take(item[1]))
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
        if type(ident) is not int:
            raise SandboxError("a malformed request (no id)")
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
        """An exception of this side's code as plain data: its type's name, its message and the place of its
        innermost frame outside the kata package (Place.to_json(), or None), and the trail of files it went through
        (kata.course.places.trail: where an exercise called a helper module)."""
        place = raised_at(error, skip=KATA_PACKAGE)
        try:
            message = str(error)
        except BaseException:  # noqa: B036 - a __str__ that raises is the student's problem, not ours
            message = "(its message could not be printed)"
        return {"type": type(error).__name__, "message": message[:4000],
                "place": place.to_json() if place is not None else None,
                "trail": [p.to_json() for p in trail(error, skip=KATA_PACKAGE, limit=TRAIL_PLACES)]}

    def error_from(self, description):
        """The exception to raise for the other side's description: the built-in class of that name, else
        RemoteError; its text is 'message (raised at FILE:LINE)', and it carries remote_message (the message
        alone), remote_place (a Place, its path as this side knows it, or None) and remote_trail (Places, innermost
        last: the other side's trail, its paths as this side knows them)."""
        if not isinstance(description, dict):
            return SandboxError("a malformed error")
        name = str(description.get("type", "Exception"))[:100]
        message = self.outside(str(description.get("message", ""))[:4000])
        place = Place.from_json(description.get("place"))
        if place is not None:
            place = Place(self.outside(place.file), place.line, place.function)
        text = f"{message} (raised at {place})" if place is not None else message
        cls = ERRORS.get(name)
        try:
            error = cls(text) if cls is not None else RemoteError(f"{name}: {text}")
        except Exception:
            error = RemoteError(f"{name}: {text}")
        error.remote_message, error.remote_place = message, place
        found = description.get("trail")
        found = [Place.from_json(item) for item in found[-TRAIL_PLACES:]] if isinstance(found, list) else []
        error.remote_trail = tuple(Place(self.outside(item.file), item.line, item.function)
                                   for item in found if item is not None)
        return error
