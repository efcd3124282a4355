"""Starting and stopping the child: `Sandbox`.

The child runs with a clean environment, no standard input or output, its own session, resource limits and a
deadline; `stop()` kills it and every process it started (the parent is their subreaper). It is confined in the
strongest of three set-ups this machine allows: namespaces of its own (confinement.isolate), else (root without
namespaces) another uid running a staged copy (accounts.staged_for), else the grader's own user.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import ONE_BLAS_THREAD
from ..course.places import Place, in_dump, plain_import_failure, running
from .accounts import STAGED, sandbox_user, staged_for, user_name
from .child import command
from .confinement import KATA_PACKAGE, PR_SET_CHILD_SUBREAPER, Isolation, limit_child, prctl
from .parent import ParentEndpoint
from .processes import Cgroups, children_of, claim_uid, kill_all, release_uid, sweep, user_processes
from .wire import CallTimeout, Channel, ChildDied, NotContained, SandboxError


class Sandbox:
    """A child process serving one implementation folder, confined as policy (a Policy) says. Use as a context
    manager, or start() and stop()."""

    def __init__(self, folder, policy, startup_seconds=60.0):
        self.folder = str(Path(folder).resolve())
        self.policy = policy
        self.startup_seconds = startup_seconds
        self.process = None
        self.endpoint = None
        self.broken = None  # the import error of the implementation, if it did not import
        self.broken_verdict = None  # where it failed: kata.course.places.import_failure's report, or None
        self.workdir = None
        # set by start(): whether the child got namespaces, whether the policy's hidden paths are closed to it,
        # where it sees the folder, who it runs as, and what the report should say about that
        self.isolated = self.hidden = False

    def start(self):
        prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of the child come to us, so stop() can reap them
        self.known_children = set(children_of(os.getpid()))
        parent_sock, child_sock = socket.socketpair()
        self.workdir = tempfile.mkdtemp(prefix="kata-sandbox-")
        self.token = os.urandom(8).hex()
        sweep()  # first, what earlier sandboxes whose holders died left running (and their cgroups)
        self.cgroup = Cgroups.make(self.token, self.policy.max_pids, self.policy.cpus) if os.geteuid() == 0 else None
        self.isolated, self.hidden, self.inside, self.user = False, False, self.folder, user_name(os.geteuid())
        self.own_uid = None  # the uid of its own the child runs as (root without namespaces), or None
        try:
            self.process = self._launch_confined(child_sock)
        except NotContained:
            parent_sock.close()
            self._clean_up()
            raise
        finally:
            child_sock.close()
        self.stderr_tail, self.stdout_tail = bytearray(), bytearray()
        threading.Thread(target=self._drain, args=(self.process.stderr, self.stderr_tail), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.process.stdout, self.stdout_tail), daemon=True).start()
        self.endpoint = ParentEndpoint(self, Channel(parent_sock))
        self.endpoint.channel.on_timeout = self._timed_out
        self._take_first_message(self._first_message())
        return self

    # starting, in the strongest set-up this machine allows ---------------
    def _launch_confined(self, child_sock):
        """The child, started in namespaces, else (root) as another uid, else as the grader's own user."""
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.workdir, **ONE_BLAS_THREAD,
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "KATA_SANDBOX": self.token}
        user = sandbox_user(self.policy) if os.geteuid() == 0 else None
        process = None
        if not self.policy.namespaces:
            self.isolation_note = "namespaces turned off by KATA_SANDBOX_NAMESPACES=0"
        else:
            process = self._launch_in_namespaces(child_sock, env, user)
        if process is None and os.geteuid() == 0:  # root without namespaces: another uid, files closed to it
            process = self._launch_as_other_uid(child_sock, env, user)
        elif process is None:
            self.isolation_note += f"; user {self.user}"
        if process is None:  # it would stay root, or keep the grader's own user, without namespaces
            self._refuse_unless_allowed(self.isolation_note)
            process = self._launch(child_sock, str(KATA_PACKAGE.parent), self.folder, self.workdir, env,
                                   self._nproc_for(user), Isolation(cgroup=self.cgroup))
        return process

    def _launch_in_namespaces(self, child_sock, env, user):
        """The child in namespaces of its own, seeing the folder at Policy.inside; None if they cannot be made."""
        try:
            process = self._launch(child_sock, str(KATA_PACKAGE.parent), self.policy.inside, "/",
                                   dict(env, HOME="/tmp"), self._nproc_for(user),
                                   Isolation(self.folder, user, self.cgroup))
        except (subprocess.SubprocessError, OSError) as error:
            self.isolation_note = f"namespaces could not be made ({error})"
            return None
        self.isolated, self.hidden, self.inside = True, True, self.policy.inside
        self.user = user[2] if user else self.user
        kinds = "mount, PID, network, IPC" + ("" if os.geteuid() == 0 else ", user")
        self.isolation_note = f"namespaces: {kinds}; user {self.user}"
        return process

    def _launch_as_other_uid(self, child_sock, env, named):
        """(Root without namespaces.) The child as another uid, from a staged copy; None if no uid will do."""
        user, hidden, why = staged_for(named, self.folder, self.workdir, self.policy)
        process = None
        if user is not None and not hidden:  # it could read the reference
            self._refuse_unless_allowed(f"{self.isolation_note}; user {user[2]}: {why}")
        if user is not None and self.policy.transient_uids[0] <= user[0] < self.policy.transient_uids[1]:
            self.own_uid = user[0]
            claim_uid(self.own_uid)  # whatever happens to this process, its processes are killed in the end
        if user is not None:
            process = self._launch(child_sock, self.workdir, STAGED, self.workdir, env, self._nproc_for(user),
                                   Isolation(user=user, cgroup=self.cgroup))
            self.hidden, self.inside, self.user = hidden, str(Path(self.workdir) / STAGED), user[2]
        self.isolation_note += f"; user {self.user}: {why}"
        return process

    def _refuse_unless_allowed(self, why):
        """NotContained, unless the policy allows a child that cannot be confined (trusted code only)."""
        if not self.policy.allow_unconfined:
            raise NotContained(
                f"refusing to run the submission's code where it cannot be contained ({why}). Grade "
                f"as root where namespaces can be made, or as an ordinary user where `unshare -Ur true` works; as root "
                f"without namespaces, let other users run this Python and NumPy ({sys.executable}: chmod o+rx on every "
                f"folder down to it). For code you trust, --allow-unconfined grades it anyway.")

    def _launch(self, child_sock, package_home, folder_arg, cwd, env, nproc, isolation):
        return subprocess.Popen(
            command(package_home, child_sock.fileno(), self.startup_seconds, folder_arg),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
            pass_fds=(child_sock.fileno(),), start_new_session=True,
            preexec_fn=limit_child(self.policy, nproc, isolation))

    def _nproc_for(self, user):
        """RLIMIT_NPROC of a child: the processes its user already has plus its share (a per-user count: other
        sandboxes share it); None for root where a pids cgroup counts instead."""
        if os.geteuid() != 0:
            return user_processes(os.getuid()) + 8 + self.policy.processes
        if user is None or (self.cgroup is not None and self.cgroup.caps_processes):
            return None
        return user_processes(user[0]) + self.policy.max_pids

    def _first_message(self):
        """The child's first message ("ready" or "broken"), within the start-up deadline."""
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
                              f"{running(error.place)}: an infinite loop at import?", error.place) from None
        except SandboxError:
            self.stop()
            raise
        finally:
            self.endpoint.channel.deadline = None
        return header

    def _take_first_message(self, header):
        if header.get("kind") == "broken":
            message = str(header.get("message", "the implementation did not import"))[:4000]
            self.broken = self._inside_to_outside(message)
            verdict = header.get("verdict")
            self.broken_verdict = verdict if plain_import_failure(verdict) else None
            if self.broken_verdict:
                self.broken_verdict["error"] = self._inside_to_outside(self.broken_verdict["error"])
        elif header.get("kind") != "ready":
            self.stop()
            raise SandboxError("the implementation's process did not start properly")

    # the running child -------------------------------------------------
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

    def printed(self):
        """What the implementation wrote to its standard output since the last call (its last 64 KiB), with its
        paths as the grader knows them: for whoever grades, never for the tests."""
        if not hasattr(self, "stdout_tail"):
            return ""
        size = len(self.stdout_tail)
        text = bytes(self.stdout_tail[:size]).decode(errors="replace")
        del self.stdout_tail[:size]
        return self._inside_to_outside(text)

    def _where_stuck(self):
        """Where the child is running (a Place: file as the grader knows it, line, function), from a traceback it
        dumps on SIGUSR1 (or has dumped by itself, when its import outlived the start-up deadline), or None."""
        if not self.alive():
            return None
        mark = len(self.stderr_tail)
        # in a PID namespace the server is the child of the process we started (which only waits for it)
        server = (children_of(self.process.pid) or [None])[0] if self.isolated else self.process.pid
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
        spot = in_dump(text[max(0, *starts):], self.folder)
        return Place(str(Path(self.folder) / Path(spot.file).name), spot.line, spot.function) if spot else None

    def _timed_out(self):
        """Where the child was when its time ran out; then it is killed (a child past its deadline is useless)."""
        place = self._where_stuck()
        self.stop()
        return place

    def implementation(self):
        """The implementation's package as a RemoteObject."""
        return self.endpoint.decode_object({"$object": "$module", "type": "module"})

    def set_deadline(self, seconds):
        """Every answer from now on must come within seconds of now (None: no deadline)."""
        self.endpoint.channel.deadline = None if seconds is None else time.monotonic() + seconds

    def reset(self):
        """Forget every object and array shared so far (between two tests)."""
        self.endpoint.request("reset")
        self.endpoint.channel.new_test()  # the child's budget of bytes (wire.MAX_TEST_BYTES) starts again
        self.endpoint.mirrors.clear()
        self.endpoint.callbacks.clear()
        self.endpoint.proxies.clear()
        self.endpoint.raised.clear()

    def errors(self):
        """The child's errors raised here since the last reset: a test may quote one in a failure of its own (as
        pytest-check does), so a report can still say where in the implementation it was raised."""
        return list(self.endpoint.raised) if self.endpoint is not None else []

    def seed(self, value=0):
        """Seed the child's global NumPy generator (what an implementation's initialisation draws from)."""
        self.endpoint.request("seed", args=[int(value)])

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        """Kill the child, its process group and every process it left behind; reap them all."""
        if self.process is None:
            return
        kill_all(self.process, self.cgroup, self.known_children, self.token)
        if self.endpoint is not None:
            self.endpoint.channel.sock.close()
        for stream in (self.process.stderr, self.process.stdout):
            if stream is not None:
                stream.close()
        self._clean_up()
        self.process = None

    def _clean_up(self):
        """The child's work folder and cgroup, once nothing runs in them; its own uid's processes, wherever they
        went (out of its session, environment cleared, out of reach of the cgroups), and what it made."""
        if self.own_uid is not None:
            release_uid(self.own_uid)
            self.own_uid = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.cgroup is not None:
            self.cgroup.remove()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
