"""What the child does to itself before exec: resource limits, a parent-death signal, and, with namespaces, a view
of the machine in which the implementation can read little and change nothing (isolate)."""

import ctypes
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import kata

try:
    import resource
except ImportError:  # Windows: the sandbox is not available there (unsupported() says why); the rest of the kata is
    resource = None

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWPID = 0x00020000, 0x08000000, 0x40000000, 0x20000000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MS_NOEXEC = 8
KATA_PACKAGE = Path(kata.__file__).resolve().parent  # the grader's own package, which the child runs too


@dataclass(frozen=True)
class Isolation:
    """How one child is confined beyond its resource limits."""
    folder: str | None = None  # with namespaces: the implementation's folder, shown at Policy.inside; else None
    user: tuple | None = None  # (uid, gid, name) the child runs as; None: the grader's own user
    cgroup: object = None  # the child's cgroups (processes.Cgroups) it joins, or None

    @property
    def uid_only(self):
        """Root without namespaces: running as another uid is what closes the grader's files to the child."""
        return self.folder is None and self.user is not None


def unsupported():
    """Why no sandbox can run on this machine, as one sentence, or "" (Linux, where everything it needs is there).
    What is missing is looked up, not inferred from the platform's name."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox runs on Linux only, and this is {sys.platform}"
    missing = [f"os.{name}" for name in ("fork", "killpg", "setsid", "getuid", "geteuid") if not hasattr(os, name)]
    missing += [] if resource is not None else ["the resource module"]
    missing += [] if hasattr(signal, "SIGKILL") else ["signal.SIGKILL"]
    return f"the sandbox needs {', '.join(missing)}, which this Python lacks" if missing else ""


def prctl(option, value):
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError, TypeError):  # no prctl (macOS), no C library by that name (Windows)
        return False


def die_with_parent():
    """(A preexec_fn.) This process is killed when the thread that started it ends, however it ends (even killed
    outright); nothing where the kernel has no parent-death signal (macOS, Windows)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def prctl_checked(option, value):
    if not prctl(option, value):
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


def libc_call(name, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{name}: {os.strerror(error)}")


def mount(source, target, fstype, flags, data=None):
    libc_call("mount", source.encode() if source else None, str(target).encode(),
               fstype.encode() if fstype else None, ctypes.c_ulong(flags), data.encode() if data else None)


def isolate(folder, policy, user=None):
    """(In the child, before exec.) New mount, PID, network and IPC namespaces, and a view of the machine in which
    the implementation can read little and change nothing:

    - PID 1 of the new PID namespace runs the implementation (this process forks it and only waits), with a
      /proc of its own: no other process of the machine can be seen or reached;
    - /tmp is empty but for the implementation's folder (read-only); the hidden paths (the reference, the tests,
      .git: Policy.hidden) are empty; /sys is empty; /dev holds Policy.devices only (null, zero, random, urandom);
    - every other mount is read-only, and every capability is dropped (root without capabilities cannot mount,
      unmount, trace or load anything, and no program it runs can give them back).

    As root, user (uid, gid, name) is who the implementation then runs as. Not as root (user None), a user
    namespace of its own gives the capabilities to build that view; it maps only the grader's own uid, so the
    implementation runs as the grader's user, without any capability once exec'd, in a view it cannot undo (the
    mounts that hide are locked to it: a user namespace of its own would only get copies it cannot unmount).
    """
    _enter_namespaces()
    _build_view(folder, policy)
    _drop_privileges(user)


def _enter_namespaces():
    """New mount, PID, network and IPC namespaces (and a user namespace of its own when not root). This process
    forks the one that goes on to run the implementation as PID 1, and only waits for it."""
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
    if os.geteuid() != 0:
        uid, gid = os.getuid(), os.getgid()
        libc_call("unshare", CLONE_NEWUSER | flags)
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="utf-8") as stream:
                stream.write(text)
    else:
        libc_call("unshare", flags)
    pid = os.fork()
    if pid:  # the waiter: its exit status is the server's; it keeps no descriptor of the grader open
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _build_view(folder, policy):
    """The view of the machine the implementation gets: see isolate(). Ends in the empty /tmp."""
    hide = policy.hidden_here()
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the grader's mounts
    keep = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    devices = {name: os.open(f"/dev/{name}", os.O_RDONLY) for name in policy.devices}
    # the grader's work folders and the homes go; what Python and this package need to run is bound back
    needed = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), str(KATA_PACKAGE.parent)})
    for top, size, inodes in (("/tmp", policy.tmp_size, policy.tmp_inodes),
                               ("/root", policy.home_size, policy.small_inodes),
                               ("/home", policy.home_size, policy.small_inodes)):
        if os.path.isdir(top):
            empty_but(top, needed, f"size={size},nr_inodes={inodes}")
    import shutil  # a copy the sandbox user may read, whoever owns the grader's folder; nothing can write it
    shutil.copytree(f"/proc/self/fd/{keep}", policy.inside, ignore=shutil.ignore_patterns("__pycache__"))
    os.close(keep)
    for root, dirs, files in os.walk(policy.inside):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        os.chmod(root, 0o555)
    # a mount of its own, made read-only below (its owner cannot chmod it)
    mount(policy.inside, policy.inside, None, MS_BIND)
    small = f"size={policy.hidden_size},nr_inodes={policy.small_inodes}"
    for path in hide:
        if not os.path.lexists(path):  # under a folder emptied above: gone from the view already
            continue
        if os.path.isdir(path):
            mount("none", str(path), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, f"{small},mode=555")
        else:  # a file (.git in a worktree of git's): it reads empty
            mount("/dev/null", str(path), None, MS_BIND)
    mount("none", "/sys", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, f"{small},mode=555")
    for secret in ("/etc/shadow", "/etc/gshadow"):
        if os.path.exists(secret):
            mount("/dev/null", secret, None, MS_BIND)
    mount("none", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, f"size={policy.dev_size},nr_inodes={policy.small_inodes},"
                                                          f"mode=755")
    for name, fd in devices.items():
        open(f"/dev/{name}", "w", encoding="utf-8").close()
        mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, MS_BIND)
        os.close(fd)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # this namespace's processes only
    with open("/proc/self/mountinfo", encoding="utf-8") as stream:
        points = [line.split()[4].replace("\\040", " ") for line in stream]
    for point in points:  # read-only everywhere but /tmp (and /tmp/submission is read-only too)
        if point in ("/tmp", "/proc") or point.startswith("/proc/"):
            continue
        try:
            _remount_read_only(point)
        except OSError:
            if point in ("/", policy.inside) or any(point == str(path) for path in hide):
                raise
    mount(None, "/proc", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir("/tmp")


def _drop_privileges(user):
    """Every capability dropped for good; as root, the unprivileged user from now on; no way back (no new
    privileges, whatever the implementation runs)."""
    with open("/proc/sys/kernel/cap_last_cap", encoding="utf-8") as stream:
        last = int(stream.read())
    for capability in range(last + 1):
        prctl_checked(PR_CAPBSET_DROP, capability)
    if user is not None:  # an unprivileged user: root's files (0600) and everything not world-readable are closed
        become(user)
    prctl_checked(PR_SET_NO_NEW_PRIVS, 1)


def _remount_read_only(point):
    """Make the mount at point read-only, keeping its nosuid, nodev and noexec (which a user namespace may not
    drop: without them the remount would be refused)."""
    try:
        kept = os.statvfs(point).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)  # ST_ and MS_ values agree here
    except OSError:
        kept = 0
    mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | kept)


def become(user):
    """Run as user (uid, gid, name) from now on, in no supplementary group (root only)."""
    os.setgroups([])
    os.setgid(user[1])
    os.setuid(user[0])


def empty_but(top, keep, limits):
    """(In isolate.) An empty tmpfs over top (limits: its size and inode options), with the paths of keep that lie
    inside it bound back in place."""
    kept = []
    for path in keep:
        if (path == top or path.startswith(top.rstrip("/") + "/")) and os.path.isdir(path):
            try:
                kept.append((path, os.open(path, os.O_RDONLY | os.O_DIRECTORY)))
            except PermissionError:  # out of this user's reach anyway
                pass
    mount("none", top, "tmpfs", MS_NOSUID | MS_NODEV, f"{limits},mode={1777 if top == '/tmp' else 755}")
    for path, fd in kept:
        os.makedirs(path, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
        os.close(fd)


def limit_child(policy, nproc, isolation):
    """The child's preexec_fn: join the cgroup, isolate (with namespaces), set the resource limits, then (root
    without namespaces) become the other user."""
    def apply():
        # first: with namespaces this process becomes the waiter, which never returns here; it must die with the
        # process that started it (the test process), and PID 1 of its namespace with it, and all that PID 1 holds
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if isolation.cgroup is not None:
            isolation.cgroup.join(os.getpid())
        if isolation.folder is not None:
            isolate(isolation.folder, policy, isolation.user)
        resource.setrlimit(resource.RLIMIT_AS, (policy.memory_bytes, policy.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (policy.cpu_seconds, policy.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # no file can be written (results, fake reports)
        resource.setrlimit(resource.RLIMIT_NOFILE, (policy.open_files, policy.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if isolation.uid_only:
            become(isolation.user)
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # (setuid clears it)
            prctl_checked(PR_SET_NO_NEW_PRIVS, 1)
    return apply
