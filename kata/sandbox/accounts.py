"""Which user the child runs as: the sandbox user (root with namespaces), or, for root without namespaces, a uid of
its own that runs the child from a staged copy, checked once to read none of the hidden paths."""

import json
import os
import subprocess
import sys
from pathlib import Path

from .. import ONE_BLAS_THREAD
from .confinement import KATA_PACKAGE, become
from .processes import process_uids

STAGED = "submission"  # the implementation's folder in the child's work folder (root without namespaces)
_USER_CHECKS = {}  # (named user, interpreter, hidden paths) -> what _check_users found, once per process


def sandbox_user(policy):
    """(uid, gid, name) of the unprivileged user the child runs as (the first of Policy.users that exists), or
    None where there is none."""
    import pwd
    for name in policy.users:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return entry.pw_uid, entry.pw_gid, name
    return None


def user_name(uid):
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _transient_user(policy):
    """(uid, gid, name) of a uid that no account and no running process has. A child running as it can signal
    no other process (the other children of the same grading included), and reads only what everyone may."""
    import pwd
    import random
    busy = process_uids()
    while True:
        uid = random.SystemRandom().randrange(*policy.transient_uids)
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if uid not in busy:
                return uid, uid, f"uid {uid} (a uid of its own)"


def staged_for(named, folder, workdir, policy):
    """(Root without namespaces.) Make workdir a folder another user can run the child from (a copy of this
    package and of the implementation's folder, which only root can change), and choose who the child runs as: a
    uid of its own (_transient_user) or, where the kernel refuses those (a container mapping few uids), named.
    Checked once: that user can run Python with NumPy, and cannot read the hidden paths, which are closed to
    other users if need be (chmod go-rwx). (user or None for root, whether the hidden paths are closed to it,
    what was done)."""
    import shutil
    work = Path(workdir)
    shutil.copytree(KATA_PACKAGE, work / "kata")  # the grader's own package, __pycache__ included (no compiling)
    shutil.copytree(folder, work / STAGED, ignore=shutil.ignore_patterns("__pycache__"))
    for root, _, files in os.walk(work):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        os.chmod(root, 0o555)
    key = (named, sys.executable, policy.hidden)
    if key not in _USER_CHECKS:
        _USER_CHECKS[key] = _check_users(named, work, policy)
    who, hidden, why = _USER_CHECKS[key]
    return (_transient_user(policy) if who == "transient" else who), hidden, why


def _check_users(named, work, policy):
    """(For staged_for.) ("transient", named or None; whether the hidden paths are closed to it; what was done)."""
    code = ("import json, os, sys; sys.path.insert(0, sys.argv[1]); import numpy, kata.sandbox\n"
            "def readable(path):\n    try:\n        os.listdir(path)\n        return True\n"
            "    except OSError:\n        return False\n"
            "print(json.dumps([path for path in sys.argv[2:] if readable(path)]))")

    def readable(user):
        try:
            done = subprocess.run([sys.executable, "-I", "-B", "-c", code, str(work),
                                   *policy.hidden_here()], stdin=subprocess.DEVNULL, capture_output=True,
                                  cwd=work, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **ONE_BLAS_THREAD},
                                  timeout=120, preexec_fn=lambda: become(user))
        except (OSError, subprocess.SubprocessError) as error:
            return None, f"{user[2]} cannot run {sys.executable} ({error})"
        if done.returncode != 0:
            last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1][:300]
            return None, f"{user[2]} cannot run {sys.executable} with NumPy here ({last})"
        return json.loads(done.stdout), ""

    who, user = "transient", _transient_user(policy)
    found, why = readable(user)
    if found is None and named is not None:
        who, user = named, named
        found, why = readable(user)
    if found is None:
        return None, False, f"{why}, so the child stays root"
    if found:
        for path in found:
            os.chmod(path, os.stat(path).st_mode & ~0o077)
        closed = ", ".join(Path(path).name + "/" for path in found)
        still, why = readable(user)
        if still is None:
            return None, False, f"{why}, so the child stays root"
        if still:
            return who, False, (f"it can still read {', '.join(still)} after chmod go-rwx (an ACL?): the reference "
                                f"is not hidden")
        return who, True, f"closed {closed} to other users (chmod go-rwx), so it cannot read them"
    return who, True, "the reference and the tests are closed to it by file permissions"
