"""What the sandbox allows the child, in one value that can cross a process boundary (to_json, from_json)."""

import dataclasses
import os
from dataclasses import dataclass, field


def _namespaces_wanted():
    return os.environ.get("KATA_SANDBOX_NAMESPACES", "1") != "0"


@dataclass(frozen=True)
class Policy:
    hidden: tuple  # paths (strings) the child must not read: the reference, the tests (expected values), the history
    memory_bytes: int = 3 << 30  # address space: numpy needs a few hundred MB; a memory bomb gets MemoryError
    cpu_seconds: int = 300  # CPU time of the child over its life; the wall-clock deadline usually comes first
    open_files: int = 64
    processes: int = 0  # beyond those the user already has (RLIMIT_NPROC; the kernel exempts root)
    max_pids: int = 32  # every process and thread of the child together, where a pids cgroup can be made (root)
    devices: tuple = ("null", "zero", "random", "urandom")  # all the child's /dev holds (with namespaces)
    cpus: float = 1.0  # CPU time per second of all its processes together (a cgroup quota, root), with one weight
    tmp_size: str = "32m"  # the child's empty /tmp
    tmp_inodes: int = 1024  # files and folders in it (its copy of the folder takes a few dozen): kernel memory the
    # size above does not count, and no cgroup of ours is charged for
    small_inodes: int = 64  # files and folders in each of the other (read-only) file systems made for it
    home_size: str = "64k"  # the emptied /root and /home
    hidden_size: str = "4k"  # what covers a hidden path, and /sys
    dev_size: str = "64k"
    inside: str = "/tmp/submission"  # where the child sees the implementation's folder (with namespaces)
    users: tuple = ("kata-sandbox", "nobody")  # the child runs as the first that exists (when the grader is root)
    transient_uids: tuple = (0x7F000000, 0x7FFF0000)  # uids no account has (root without namespaces)
    namespaces: bool = field(default_factory=_namespaces_wanted)  # False: KATA_SANDBOX_NAMESPACES=0 turned them off
    # run the child even where it cannot be contained (it would stay root, or keep the grader's own user without
    # namespaces, or could read the hidden paths): for code one trusts only; by default such a start is refused
    allow_unconfined: bool = False

    def __post_init__(self):
        for name in ("hidden", "devices", "users", "transient_uids"):  # JSON gives lists; a frozen value keeps tuples
            object.__setattr__(self, name, tuple(str(p) if name == "hidden" else p for p in getattr(self, name)))

    def hidden_here(self):
        """The hidden paths that exist on this machine (only those can be covered or closed)."""
        return [path for path in self.hidden if os.path.exists(path)]

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data):
        """A Policy from to_json()'s dict (a field it lacks takes its default; an unknown field is refused)."""
        return cls(**data)
