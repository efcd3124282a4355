"""The machine's processes as /proc shows them, the child's cgroups, and killing and reaping every process the
child started (the parent is their subreaper)."""

import collections
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def process_uids():
    """{uid: how many processes of the machine (that this process can see) run as it}."""
    uids = collections.Counter()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                uids[os.stat(f"/proc/{entry}").st_uid] += 1
            except OSError:
                pass
    return uids


def peak_bytes(pid="self"):
    """The most memory the process pid has held at once so far (its high-water mark: VmHWM), or 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as stream:
            return next((int(line.split()[1]) * 1024 for line in stream if line.startswith("VmHWM:")), 0)
    except (OSError, ValueError, IndexError):
        return 0


def user_processes(uid):
    return process_uids()[uid]


def children_of(pid, zombies=False):
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


class Cgroups:
    """The child's cgroups (cgroup v1), one per controller this machine lets us use: pids caps its processes and
    threads together (a fork bomb), cpu gives it at most Policy.cpus CPUs and one equal weight however many
    processes it runs (a submission cannot starve one graded beside it), freezer stops all of it at once before it
    is killed. Named kata-<holder pid>-<token>, so a later sandbox removes them (and kills what they still hold)
    should the holder die without stop()."""

    def __init__(self, paths):
        self.paths = paths  # {controller: Path}

    @classmethod
    def make(cls, token, max_pids, cpus):
        """The child's cgroups, or None where none can be made (not root, no cgroup v1 hierarchies)."""
        name = f"kata-{os.getpid()}-{token}"
        period = 100_000  # microseconds: the kernel's default CFS period
        wanted = {"pids": {"pids.max": str(max_pids)},
                  "cpu": {"cpu.cfs_period_us": str(period), "cpu.cfs_quota_us": str(max(1000, int(cpus * period)))},
                  "freezer": {}}
        paths = {}
        for controller, settings in wanted.items():
            path = CGROUPS / controller / name
            try:
                path.mkdir()
                for key, value in settings.items():
                    (path / key).write_text(value)
                paths[controller] = path
            except OSError:
                _remove(path)
        return cls(paths) if paths else None

    @property
    def caps_processes(self):
        return "pids" in self.paths

    def join(self, pid):
        """Put pid (the child, before it execs) in every one of them."""
        for path in self.paths.values():
            (path / "cgroup.procs").write_text(str(pid))

    def members(self):
        return _members(self.paths.values())

    def freeze(self, frozen=True):
        """Stop (or let go on) every process in them at once: a frozen fork bomb forks no more while it is killed."""
        if "freezer" in self.paths:
            try:
                (self.paths["freezer"] / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
            except OSError:
                pass

    def remove(self):
        for path in self.paths.values():
            _remove(path, tries=100)

    def __str__(self):
        return str(self.paths.get("pids") or next(iter(self.paths.values())))


CGROUPS = Path("/sys/fs/cgroup")
CONTROLLERS = ("pids", "cpu", "freezer")


def _members(paths):
    """The processes in any of the cgroups paths (exited ones leave at once, before being reaped)."""
    found = set()
    for path in paths:
        try:
            found.update(int(pid) for pid in (Path(path) / "cgroup.procs").read_text().split())
        except (OSError, ValueError):
            pass
    return sorted(found)


def _remove(path, tries=1):
    for attempt in range(tries):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # still emptying
            time.sleep(0.01 * (attempt + 1 < tries))


def sweep_cgroups():
    """Remove the cgroups of sandboxes whose holding process is gone (killed before it could stop() them), after
    killing whatever they still hold: nothing of an earlier grading runs on beside this one."""
    orphans = {}
    for controller in CONTROLLERS:
        for path in (CGROUPS / controller).glob("kata-*-*"):
            if holder_gone(path.name):
                orphans.setdefault(path.name, {})[controller] = path
    for paths in orphans.values():
        left = Cgroups(paths)
        for _ in range(50):
            victims = left.members()
            if not victims:
                break
            kill_frozen(victims, left)
            time.sleep(0.01)
        left.remove()


def holder_gone(name):
    """Whether the process holding the cgroup called name (kata-<holder pid>-<token>) is gone."""
    holder = name.split("-")[1] if name.count("-") >= 2 else ""
    return holder.isdigit() and not os.path.exists(f"/proc/{holder}")


def kill_frozen(pids, cgroups=None, group=None):
    """SIGKILL pids (and the process group group), with cgroups frozen meanwhile: nothing in them forks while the
    signals go out, and a frozen process dies of its SIGKILL once it runs again."""
    if cgroups is not None:
        cgroups.freeze()
    if group is not None:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if cgroups is not None:
        cgroups.freeze(False)


def cgroup_members(cgroups):
    """The processes still in the child's cgroups (none when it has none)."""
    return cgroups.members() if cgroups is not None else []


def marked(pid, token):
    """Whether a process carries the child's token in its environment (so it was started from the child)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as stream:
            return f"KATA_SANDBOX={token}".encode() in stream.read().split(b"\0")
    except OSError:
        return False


def descendants(root, cgroup, known, token):
    """The process tree below root, every orphan that came to us since the child started (not in known, marked
    with token), and every process of the child's cgroup."""
    tree, frontier = set(), [root, *cgroup_members(cgroup)]
    while frontier:
        children = children_of(frontier.pop())
        frontier += [c for c in children if c not in tree]
        tree |= set(children)
    orphans = {pid for pid in set(children_of(os.getpid())) - known - {root} if marked(pid, token)}
    return (tree | orphans) - {os.getpid()}


def reap(pids):
    """Collect the exit status of those of pids that are our children (orphans we adopted)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def kill_all(process, cgroup, known, token):
    """Kill the child (a Popen), its process group and every process it left behind; reap them all."""
    pid = process.pid
    for attempt in range(250):  # at most about 5 s
        victims = descendants(pid, cgroup, known, token)
        if process.poll() is None:
            victims.add(pid)
        if not victims and not cgroup_members(cgroup):
            break
        kill_frozen(victims, cgroup, group=pid)
        reap(victims - {pid})
        time.sleep(0.02 * (attempt > 0))
    process.wait()
    # orphans of the child adopted by this process (its subreaper) and dead by now: reap them
    reap(set(children_of(os.getpid(), zombies=True)) - known)


# ---------------------------------------------------------------- a uid of the child's own (root, no namespaces)
WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")  # where any user may make files: the child's only writable places there


def _claims():
    """The folder recording which uid of its own each sandbox holds (root's only), made if need be."""
    folder = Path(tempfile.gettempdir()) / "kata-sandbox-uids"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise OSError(f"{folder} is not a folder of this user's alone")
    return folder


def claim_uid(uid):
    """Record that this process holds uid for a child, so that a later sandbox can clean up after it should this
    process die without releasing it. Sweeps what dead holders left first."""
    sweep_uids()
    (_claims() / str(uid)).write_text(str(os.getpid()))


def release_uid(uid):
    """Kill every process of uid and remove what it made in the world-writable folders; forget the claim."""
    _kill_user(uid)
    _remove_owned(uid)
    try:
        (_claims() / str(uid)).unlink()
    except OSError:
        pass


def sweep_uids():
    for claim in _claims().iterdir():
        try:
            holder = int(claim.read_text())
        except (OSError, ValueError):
            holder = None
        if claim.name.isdigit() and (holder is None or not os.path.exists(f"/proc/{holder}")):
            release_uid(int(claim.name))


def _kill_user(uid):
    """Every process of uid killed: a process running as uid signals all it may (kill(-1)), which are exactly
    those of uid (a uid of the child's own; never a shared one such as nobody)."""
    if not process_uids()[uid]:
        return
    for _ in range(5):  # a fork bomb may still be forking while the first signals go out
        subprocess.run([sys.executable, "-I", "-S", "-c", "import os; os.kill(-1, 9)"], user=uid, group=uid,
                       extra_groups=[], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env={}, check=False)
        if not process_uids()[uid]:
            return


def _remove_owned(uid, folders=WRITABLE, depth=3):
    """Remove what uid made in folders: empty files (it may write no byte) and folders, whose names could carry
    what it read to a later child, and whose inodes count against the machine's."""
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid == uid:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass
            elif depth > 1 and stat.S_ISDIR(info.st_mode) and info.st_mode & 0o002:  # another folder it may write in
                _remove_owned(uid, [entry.path], depth - 1)


def sweep():
    """Kill and remove whatever sandboxes whose holders are gone left behind: processes, cgroups, a uid's files.
    Every sandbox does it as it starts; the grader does it again once a test process has ended."""
    if os.geteuid() == 0:
        sweep_uids()
        sweep_cgroups()
