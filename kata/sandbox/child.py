"""The child's side: the endpoint that holds the implementation's objects and serves the parent's requests, the
main loop, and the command line the parent starts the child with."""

import argparse
import os
import signal
import socket
import sys
from pathlib import Path

import numpy as np

from .rpc import Endpoint
from .wire import Channel, ChildDied, SandboxError


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
    channel = Channel(sock, bounded=False)  # what the tests send is theirs
    import faulthandler
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=False)  # the parent asks where we are
    if startup_seconds:  # where an import that hangs is, even if it ignores SIGUSR1: dumped just before the deadline
        faulthandler.dump_traceback_later(max(startup_seconds - 0.3, startup_seconds / 2), file=sys.stderr)
    from ..course.implementation import ImplementationError, load
    try:
        module = load(folder)
        faulthandler.cancel_dump_traceback_later()
        endpoint = ChildEndpoint(channel, module)
        channel.send({"kind": "ready"}, [])
    except ImplementationError as error:
        faulthandler.cancel_dump_traceback_later()
        from ..course.places import import_failure
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


def command(package_home, fd, startup_seconds, folder):
    """The child's command line: serve folder on the socket fd, with the `kata` package found in package_home
    (whatever `kata` its environment would find by itself). Not `-m`: -I leaves the working folder out of sys.path.
    -u: what the implementation prints reaches the parent (Sandbox.printed) as it prints it."""
    return [sys.executable, "-I", "-B", "-u", "-c", f"import sys; sys.path.insert(0, {package_home!r}); "
            f"from kata.sandbox.child import main; main()", "--fd", str(fd), "--startup", f"{startup_seconds:g}",
            folder]


def main(argv=None):
    parser = argparse.ArgumentParser(description=argparse.SUPPRESS)
    parser.add_argument("--fd", type=int)
    parser.add_argument("--startup", type=float, help="(the parent's) seconds the import may take")
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    serve(args.fd, args.folder, args.startup)
    os._exit(0)  # no atexit handler of the implementation runs


if __name__ == "__main__":
    main()
