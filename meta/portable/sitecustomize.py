"""Python as the kata meets it on Windows, as far as Linux can show it: put this folder on PYTHONPATH and every
Python started with that environment (the tools and every process they start) loses, before anything else runs,
what `os`, `signal` and the standard library offer on POSIX only (meta/test_portable.py).

- os: process groups and sessions, users and groups, fork (killpg, setsid, getpgid, getuid, fork, ...)
- signal: every signal Windows lacks (SIGKILL, SIGALRM, SIGUSR1, ...), alarm, setitimer, pthread_kill, ...
- modules Windows lacks: resource, fcntl, termios, tty, pty, pwd, grp, readline (ModuleNotFoundError)
- subprocess: preexec_fn refused as Windows refuses it (ValueError); start_new_session and process_group, which
  Windows ignores, refused too, so that code relying on them shows up; Popen.kill() still kills (as on Windows)
- stdout and stderr that are not a terminal encode as cp1252 (strict), as Windows writes to a pipe or a file in
  its ANSI code page, unless UTF-8 mode is on (PYTHONUTF8=1, as on Windows)

os.name and sys.platform stay as they are (changing them breaks the standard library): the kata's own code
decides by what os offers (kata/course/children.py: POSIX), so it takes the branch Windows takes. What this cannot
show: Windows' own calls (taskkill, CREATE_NEW_PROCESS_GROUP, the console's Ctrl-C), paths with backslashes and
drive letters, file locking by open files, the real cp1252 default of open() (meta/test_portable.py checks the
source for an explicit encoding instead).
"""

import importlib.abc
import os
import signal
import subprocess
import sys

OS_NAMES = ("killpg", "setsid", "getsid", "getpgid", "setpgid", "getpgrp", "setpgrp", "tcgetpgrp", "tcsetpgrp",
            "getuid", "geteuid", "getgid", "getegid", "getgroups", "setuid", "seteuid", "setgid", "setegid",
            "setreuid", "setregid", "setgroups", "initgroups", "getresuid", "getresgid", "fork", "forkpty",
            "wait3", "wait4", "nice", "getpriority", "setpriority", "sched_setaffinity", "sched_getaffinity",
            "getloadavg", "chown", "lchown", "fchown", "mkfifo", "mknod")
SIGNAL_NAMES = ("SIGKILL", "SIGALRM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCHLD", "SIGSTOP", "SIGCONT",
                "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGVTALRM", "SIGPROF", "SIGXCPU", "SIGXFSZ", "SIGPIPE", "SIGBUS",
                "SIGTRAP", "SIGIO", "SIGPOLL", "SIGPWR", "SIGSYS", "SIGURG", "SIGWINCH", "SIGRTMIN", "SIGRTMAX",
                "alarm", "setitimer", "getitimer", "ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF", "pause",
                "siginterrupt", "sigwait", "sigwaitinfo", "sigtimedwait", "sigpending", "pthread_kill",
                "pthread_sigmask", "SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK")
MODULES = ("resource", "fcntl", "termios", "tty", "pty", "pwd", "grp", "readline")
BLOCKED = frozenset(MODULES)
# third-party modules that choose their Unix code by sys.platform (which stays "linux" here) and bind POSIX-only
# functions at import: imported before those go, as on Windows they would take their Windows code instead
# (platformdirs is a pytest plugin wherever JupyterLab is installed)
BOUND_AT_IMPORT = ("platformdirs", "platformdirs.unix")


class NotOnWindows(importlib.abc.MetaPathFinder):
    """Refuses the modules Windows lacks, as a missing module is refused."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (meta/portable: not on Windows)", name=name)
        return None


_popen_init = subprocess.Popen.__init__
_KILL = int(getattr(signal, "SIGKILL", 9))  # what Popen.kill sends here: Windows' kill() is TerminateProcess


def _kill(self):
    self.send_signal(_KILL)


def _windows_popen_init(self, *args, **kwargs):
    if kwargs.get("preexec_fn") is not None:
        raise ValueError("preexec_fn is not supported on Windows platforms")
    if kwargs.get("start_new_session") or kwargs.get("process_group") not in (None, -1):
        raise ValueError("start_new_session and process_group do nothing on Windows (meta/portable refuses them)")
    return _popen_init(self, *args, **kwargs)


def _narrow_output():
    if sys.flags.utf8_mode:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.isatty() and hasattr(stream, "reconfigure"):
                stream.reconfigure(encoding="cp1252")
        except (OSError, ValueError):
            pass


def apply():
    """Remove the POSIX-only parts from this process (idempotent)."""
    for name in BOUND_AT_IMPORT:
        try:
            __import__(name)
        except ImportError:
            pass
    for name in OS_NAMES:
        if hasattr(os, name):
            delattr(os, name)
    for name in SIGNAL_NAMES:
        if hasattr(signal, name):
            delattr(signal, name)
    for name in BLOCKED:
        sys.modules.pop(name, None)
    if not any(isinstance(finder, NotOnWindows) for finder in sys.meta_path):
        sys.meta_path.insert(0, NotOnWindows())
    subprocess.Popen.__init__ = _windows_popen_init
    subprocess.Popen.kill = _kill  # (the POSIX kill() reads signal.SIGKILL, which is gone)
    _narrow_output()
    os.environ["KATA_PORTABLE_SHIM"] = "1"  # for a test to see it was applied


apply()
