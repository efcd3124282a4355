"""The machine's processes as /proc shows them, the child's pids cgroup, and killing and reaping every process the
child started (the parent is their subreaper)."""

import collections
import os
import signal
import time
from pathlib import Path

CGROUP_PIDS = Path("/sys/fs/cgroup/pids")


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


def make_cgroup(token, max_pids):
    """A pids cgroup limiting every process of the child together (a fork bomb), or None where none can be. Its
    name holds this process's pid, so a later sandbox can remove it should this process die without stop()."""
    sweep_cgroups()
    try:
        cgroup = CGROUP_PIDS / f"kata-{os.getpid()}-{token}"
        cgroup.mkdir()
        (cgroup / "pids.max").write_text(str(max_pids))
        return cgroup
    except OSError:
        return None


def sweep_cgroups():
    """Remove the empty cgroups of sandboxes whose holding process is gone (killed before it could stop() them)."""
    for cgroup in CGROUP_PIDS.glob("kata-*-*"):
        holder = cgroup.name.split("-")[1]
        if holder.isdigit() and not os.path.exists(f"/proc/{holder}") and not cgroup_members(cgroup):
            try:
                cgroup.rmdir()
            except OSError:  # filled or removed meanwhile
                pass


def cgroup_members(cgroup):
    """The processes still in the child's pids cgroup (exited ones leave it at once, before being reaped)."""
    if cgroup is None:
        return []
    try:
        return [int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def remove_cgroup(cgroup):
    for _ in range(100):
        try:
            cgroup.rmdir()
            break
        except FileNotFoundError:
            break
        except OSError:  # still emptying
            time.sleep(0.01)


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
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reap(victims - {pid})
        time.sleep(0.02 * (attempt > 0))
    process.wait()
    # orphans of the child adopted by this process (its subreaper) and dead by now: reap them
    reap(set(children_of(os.getpid(), zombies=True)) - known)
