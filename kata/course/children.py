"""The tools' child processes (test runs, import probes), on Linux, macOS and Windows alike: each starts in a
process group of its own, so a terminal's Ctrl-C reaches only the tool, which then kills every child it holds,
with all they started, and starts no other.

    proc = start(command, stdout=...)      # refused (Interrupted) once interrupt() was called
    ended = wait(proc, seconds)            # False at the deadline; Ctrl-C arrives while it waits, on Windows too
    kill_tree(proc)                        # the child and what it started
    interrupt() ... resume()               # on Ctrl-C: kill every child now, refuse new ones; then allow again

Which branch runs is decided by what `os` offers (`POSIX`), never by the platform's name, so a test can take the
Windows branch on Linux by removing the POSIX-only functions (meta/portable/).
"""

import os
import signal
import subprocess
import threading
import time

# process groups and sessions (Linux, macOS); Windows has neither: there a child gets a console process group of its
# own (which the console's Ctrl-C does not reach) and is killed with taskkill /T (its tree) and TerminateProcess
POSIX = all(hasattr(os, name) for name in ("killpg", "setsid", "getpgid")) and hasattr(signal, "SIGKILL")
POLL_SECONDS = 0.1  # waits are cut into steps this long: a signal is handled between two (Windows' are uninterruptible)

_lock = threading.Lock()
_running = set()  # the Popen objects started by start() and not yet finished
_stopping = threading.Event()


class Interrupted(KeyboardInterrupt):
    """Raised where a child would start, or was killed, after interrupt(): the tool was interrupted."""


def start(command, preexec=None, **options):
    """subprocess.Popen(command, **options) in a group of its own, kept until finish(); preexec runs in the child
    before exec where the platform has fork (POSIX). Raises Interrupted once interrupt() was called."""
    if POSIX:
        options.update(start_new_session=True, preexec_fn=lambda: _child_setup(preexec))
    else:
        options["creationflags"] = options.get("creationflags", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    with _lock, _sigint_held():
        if _stopping.is_set():
            raise Interrupted()
        proc = subprocess.Popen(command, **options)
        _running.add(proc)  # before a Ctrl-C can arrive: interrupt() kills it, wherever the caller was
    return proc


def _child_setup(preexec):
    """(In the child, before exec.) SIGINT no longer held back (_sigint_held's mask is inherited), then preexec."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if preexec is not None:
        preexec()


class _sigint_held:
    """SIGINT kept pending (POSIX, main thread) until the block ends, when it is handled as usual."""

    def __enter__(self):
        self.held = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
        if self.held:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, *exc):
        if self.held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        return False


def wait(proc, limit):
    """Whether proc ended within limit seconds (None: no limit). KeyboardInterrupt may arrive while it waits."""
    deadline = None if limit is None else time.monotonic() + limit
    while True:
        step = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
        if step <= 0:
            return proc.poll() is not None
        try:
            proc.wait(timeout=step)
            return True
        except subprocess.TimeoutExpired:
            continue


def kill_tree(proc):
    """Kill proc and every process it started (its process group on POSIX; its tree on Windows). Never raises."""
    if POSIX:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: with anything the submission started
        except OSError:
            pass  # nothing left in it
    elif os.name == "nt" and proc.poll() is None:  # (the Windows branch elsewhere: proc alone)
        try:  # the tree first: once proc is gone, taskkill can no longer find its children
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        proc.kill()
    except OSError:
        pass


def finish(proc):
    """Kill what is left of proc's tree, reap proc and forget it. -> proc.returncode"""
    kill_tree(proc)
    try:
        proc.wait()
    finally:
        with _lock:
            _running.discard(proc)
    return proc.returncode


def interrupt():
    """Kill every child now and refuse new ones until resume(). -> True for the first caller (who resumes)."""
    with _lock:
        first = not _stopping.is_set()
        _stopping.set()
        procs = list(_running)
    for proc in procs:
        kill_tree(proc)
    return first


def interrupted():
    return _stopping.is_set()


def resume():
    """Children may start again (a notebook's next check, after "Interrupt kernel")."""
    _stopping.clear()


class shielded:
    """A block a second Ctrl-C does not cut short (the clean-up after the first), where signals can be handled:
    in the main thread, SIGINT is ignored inside it."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            except (ValueError, OSError):
                self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
