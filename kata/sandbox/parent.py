"""The parent's side: handles on the child's objects (RemoteObject), and the endpoint that answers the child's
calls back into the tests."""

import weakref

from .rpc import Endpoint
from .wire import SandboxError


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
        self.raised = []  # the errors of the child raised here since the last reset

    def request(self, op, **fields):
        """As Endpoint.request; a child that broke the protocol (or died, or timed out) is stopped at once: what
        it sent next could not be read in step, and it is of no more use."""
        try:
            return super().request(op, **fields)
        except SandboxError:
            self.box.stop()
            raise

    def error_from(self, description):
        error = super().error_from(description)
        self.raised.append(error)
        return error

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
        type_name = value.get("type", "object")
        if isinstance(handle, str) and isinstance(type_name, str):
            proxy = self.proxies.get(handle)
            if proxy is None:
                proxy = RemoteObject(self.box, handle, type_name[:100])
                self.proxies[handle] = proxy
            return proxy
        raise SandboxError("a malformed value")

    def perform(self, op, target, name, args, kwargs):
        if op != "callback":
            raise SandboxError(f"the implementation asked the tests for {str(op)[:100]!r}")
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise SandboxError("the implementation called back a function with malformed arguments")
        function = self.callbacks.get(name) if isinstance(name, str) else None
        if function is None:
            raise SandboxError("the implementation called back a function it was never given")
        return function(*args, **kwargs)

    def serve_one(self, header, arrays):
        if header.get("op") == "callback":
            header = dict(header, target=None)
        super().serve_one(header, arrays)
