"""The kata's commands without `make`: what each Makefile target does, on Linux, macOS and Windows.

    python make.py grade                 (py make.py grade on Windows) grade your work in exercises/
    python make.py grade --lesson 03     everything after the target's name goes to the tool
    python make.py help                  every target

Every target that needs the project's Python first checks the interpreter (3.11 or newer), creates .venv with it
(again, when the interpreter changed since .venv was made) and installs the declared dependencies at the versions
of requirements.lock. The Makefile's targets call this file, so `make grade` and `python make.py grade` are one
thing. Only the standard library is used here, in syntax old interpreters can still read, so that an old Python
is told what to do instead of failing.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.environ.get("KATA_VENV") or os.path.join(ROOT, ".venv")
LOCK = os.path.join(ROOT, "requirements.lock")
STATE_FILE = "kata-setup.json"  # inside .venv: the interpreter it was made with and what was installed
MINIMUM = (3, 11)
CANDIDATES = ["python3.13", "python3.12", "python3.11", "python3", "python"]
BASE = "notebooks,plots"  # the extras every target installs (pyproject.toml); lab adds "lab"

# (target, group, description, extras, command): a command is run with the venv's Python, the extra arguments
# added at the end; None marks a target handled by make.py itself
TARGETS = [
    ("help", "student", "List the targets", None, None),
    ("setup", "student", "Create .venv and install the locked dependencies (the other targets do it first)", BASE,
     None),
    ("grade", "student", "Grade your work in exercises/ (options after the name: grade --lesson 03)", BASE,
     ["grader.py"]),
    ("test", "student", "Run the project's own suite: the reference, the wrong implementations it must reject, "
                        "the stubs", BASE, ["-m", "pytest", "--impl", "solutions"]),
    ("train", "student", "Train your model (train --size small --plots plots; --impl solutions trains the reference)",
     BASE, ["train.py"]),
    ("play", "student", "Ask the trained model questions such as Max ( 5 3 9 ) (play --checkpoint FILE)", BASE,
     ["play.py"]),
    ("lab", "student", "Open JupyterLab at the repository's root (lab 02: lesson 02's notebook; installs JupyterLab "
                       "the first time)", BASE + ",lab", None),
    ("clean", "student", "Remove .venv and caches (your work and .kata/ backups stay)", None, None),
    ("exercises", "maintainer", "Regenerate exercises/ (changed files backed up to .kata/backup/), the "
                                "README tables and the notebooks", BASE, None),
    ("notebooks", "maintainer", "Regenerate the lesson notebooks and the README tables from the lesson texts", BASE,
     None),
    ("bench", "maintainer", "Train the reference on seeds 0-4 and print accuracy and speed", BASE,
     ["-m", "benchmarks.train_benchmark"]),
    ("lock", "maintainer", "Resolve the dependencies of pyproject.toml afresh and rewrite requirements.lock", None,
     None),
    ("release", "maintainer", "Write the students' edition: no solutions/, expected values recorded (release "
                              "--out DIR [--hint-levels 2])", BASE, ["grader.py", "release"]),
]
# The students' edition (`make release`) has no solutions/: there, the targets that need the reference are gone and
# `test` runs the edition's own checks (meta/: the tools, the recorded values, the stubs), not your exercises/
EDITION = not os.path.isdir(os.path.join(ROOT, "solutions"))
NEEDS_REFERENCE = ("exercises", "bench", "release")
if EDITION:
    TARGETS = [("test", "student", "Run the edition's own checks: the recorded expected values, the stubs, the "
                                   "commands (make grade grades your work)", BASE, ["-m", "pytest", "meta"])
               if entry[0] == "test" else
               (entry[0], entry[1], "Train your model (train --size small --plots plots)", *entry[3:])
               if entry[0] == "train" else entry for entry in TARGETS if entry[0] not in NEEDS_REFERENCE]
# the kernel the notebooks name (kata/authoring/notebooks.py: KERNEL), installed into .venv by `make lab`
KERNEL_NAME, KERNEL_DISPLAY = "transformer-kata", "Transformer kata (.venv)"
GENERATORS = {
    "exercises": [["-m", "kata.authoring.stubs"], ["-m", "kata.authoring.docs"], ["-m", "kata.authoring.notebooks"]],
    "notebooks": [["-m", "kata.authoring.notebooks"], ["-m", "kata.authoring.docs"]],
}


class Refused(Exception):
    """A condition the user must fix; its message says how."""


def how_to_get_python():
    """What to install, said for the platform this runs on."""
    if sys.platform == "darwin":
        where = ("macOS: `brew install python@3.12` (Homebrew), or the installer from python.org; then run "
                 "`make PYTHON=python3.12 grade` or `python3.12 make.py grade`")
    elif os.name == "nt":
        where = ("Windows: the installer from python.org or `winget install Python.Python.3.12`; then run "
                 "`py -3.12 make.py grade`")
    else:
        where = ("Linux: your distribution's python3.11 or newer (Debian/Ubuntu: `sudo apt install python3.11 "
                 "python3.11-venv`), or pyenv; then run `make PYTHON=python3.11 grade`")
    return "The kata needs Python 3.11 or newer. " + where + "."


def version_of(python):
    """(major, minor) of an interpreter command (a list), or None when it does not run."""
    try:
        out = subprocess.run(python + ["-c", "import sys; print('%d %d' % sys.version_info[:2])"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        major, minor = out.stdout.split()
        return int(major), int(minor)
    except ValueError:
        return None


def find_python():
    """The interpreter to build .venv with: $PYTHON if set (it must be 3.11+), this one if it is 3.11+, else the
    newest 3.11+ on PATH (or from the Windows launcher). Raises Refused with what to install."""
    chosen = os.environ.get("PYTHON")
    if chosen:
        command = [shutil.which(chosen) or chosen]
        version = version_of(command)
        if version is None:
            raise Refused("PYTHON=%s does not run. %s" % (chosen, how_to_get_python()))
        if version < MINIMUM:
            raise Refused("PYTHON=%s is Python %d.%d. %s" % ((chosen,) + version + (how_to_get_python(),)))
        return command, version
    if sys.version_info[:2] >= MINIMUM:  # (the interpreter a venv was made from, when this runs inside one)
        return [getattr(sys, "_base_executable", sys.executable)], tuple(sys.version_info[:2])
    found = []
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            found.append([path])
    if os.name == "nt" and shutil.which("py"):
        found += [["py", "-3.%d" % minor] for minor in (13, 12, 11)]
    for command in found:
        version = version_of(command)
        if version is not None and version >= MINIMUM:
            return command, version
    raise Refused("This is Python %d.%d. %s" % (sys.version_info[0], sys.version_info[1], how_to_get_python()))


def venv_python(venv=VENV):
    if os.name == "nt":
        return os.path.join(venv, "Scripts", "python.exe")
    return os.path.join(venv, "bin", "python")


def interpreter_identity(command):
    """What identifies an interpreter for .venv: its real executable and full version."""
    out = subprocess.run(command + ["-c", "import os, sys; "
                                          "print(os.path.realpath(getattr(sys, '_base_executable', sys.executable)));"
                                          " print(sys.version.split()[0])"],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True)
    executable, version = out.stdout.split("\n")[:2]
    return {"python": executable, "version": version}


def read_state(venv=VENV):
    try:
        with open(os.path.join(venv, STATE_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def lock_digest():
    digest = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        with open(os.path.join(ROOT, name), "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()[:16]


def remove(path):
    """Remove a folder, a file or a link (to nothing, too)."""
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


class SetupLock:
    """One command at a time sets up .venv: a second waits (two `make` commands started together on a fresh clone
    would otherwise both create it). The lock is a folder beside .venv holding the owner's pid; a lock whose owner
    is gone, or older than an hour, is taken over."""

    def __init__(self, venv=VENV, say=print):
        self.path, self.say = venv.rstrip("/\\") + ".setup-lock", say

    def __enter__(self):
        told = False
        while True:
            try:
                os.mkdir(self.path)
                with open(os.path.join(self.path, "pid"), "w", encoding="utf-8") as handle:
                    handle.write(str(os.getpid()))
                return self
            except FileExistsError:
                if self._abandoned():
                    remove(self.path)
                    continue
                if not told:
                    self.say("Waiting for another command that is setting up .venv...")
                    told = True
                time.sleep(0.5)

    def _abandoned(self):
        try:
            with open(os.path.join(self.path, "pid"), encoding="utf-8") as handle:
                pid = int(handle.read().strip())
            age = time.time() - os.path.getmtime(self.path)
        except (OSError, ValueError):  # made, its pid not yet written: give the owner a moment
            try:
                return time.time() - os.path.getmtime(self.path) > 10
            except OSError:
                return False
        if age > 3600:
            return True
        if os.name == "nt":
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    def __exit__(self, *exc):
        remove(self.path)


def reason_to_remake(venv=VENV, state=None):
    """Why the existing venv must be made again (None: keep it, or there is none)."""
    if os.path.lexists(venv) and not os.path.isdir(venv):
        return "it is not a folder (a file, or a link to nothing)"
    if not os.path.isdir(venv):
        return None
    state = read_state(venv) if state is None else state
    python = venv_python(venv)
    version = version_of([python]) if os.path.exists(python) else None
    if version is None:
        return "its Python does not run any more"
    if version < MINIMUM:
        return "it was made with Python %d.%d" % version
    if not state.get("lock") and subprocess.run([python, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL).returncode != 0:
        return "its making was interrupted before pip was in it"
    if os.environ.get("PYTHON"):
        identity = interpreter_identity(find_python()[0])
        if {key: state.get(key) for key in identity} != identity:
            return "it was made with %s, and PYTHON=%s is Python %s" % (
                "Python " + state["version"] if state.get("version") else "another Python",
                os.environ["PYTHON"], identity["version"])
    return None


def setup(extras=BASE, venv=VENV, say=print):
    """_setup under SetupLock: see _setup."""
    with SetupLock(venv, say):
        return _setup(extras, venv, say)


def _setup(extras=BASE, venv=VENV, say=print):
    """.venv made with a 3.11+ interpreter and the locked dependencies of extras installed; returns its Python.

    .venv is made again when its interpreter no longer runs or is older than 3.11 (it was made by an old Python,
    or that Python was removed or upgraded), or when $PYTHON names another interpreter than the one it was made
    with; the dependencies are installed again when requirements.lock, pyproject.toml or extras changed."""
    state = read_state(venv)
    reason = reason_to_remake(venv, state)
    if reason:
        say("Making .venv again: %s." % reason)
        remove(venv)
        state = {}
    if not os.path.isdir(venv):
        command, _ = find_python()
        identity = interpreter_identity(command)
        say("Creating .venv with Python %s (%s)." % (identity["version"], identity["python"]))
        try:  # (its errors shown only when it fails: a Ctrl-C needs no traceback of the venv module)
            made = subprocess.run(command + ["-m", "venv", venv], stderr=subprocess.PIPE, universal_newlines=True)
        except BaseException:  # Ctrl-C: no half-made .venv for the next command to trip on
            remove(venv)
            raise
        if made.returncode != 0:
            remove(venv)
            sys.stderr.write(made.stderr)
            raise subprocess.CalledProcessError(made.returncode, command + ["-m", "venv", venv])
    python, digest = venv_python(venv), lock_digest()
    wanted = set(filter(None, extras.split(",")))
    have = set(state.get("extras", [])) if state.get("lock") == digest else set()
    if not wanted <= have:
        wanted |= have
        say("Installing the locked dependencies (requirements.lock) into .venv: the first time takes a minute.")
        install(python, sorted(wanted), ["--constraint", LOCK])
        state = dict(state, lock=digest, extras=sorted(wanted))
        state.update(interpreter_identity([python]))
        with open(os.path.join(venv, STATE_FILE), "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1)
    return python


def install(python, extras, options=()):
    """pip install the kata (editable: its pytest plugin) with extras into python's environment; options: more of
    pip's (the lock as --constraint). setuptools comes first, at the same terms: the editable install is built with
    it rather than with a fresh one from the index."""
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + list(options)
    subprocess.run(pip + ["--upgrade", "setuptools"], check=True, cwd=ROOT)
    subprocess.run(pip + ["--no-build-isolation", "--editable", ".[%s]" % ",".join(extras)], check=True, cwd=ROOT)


def lock(say=print):
    """Resolve pyproject.toml's dependencies (every extra) in a fresh venv and write every installed version."""
    command, _ = find_python()
    with tempfile.TemporaryDirectory(prefix="kata-lock-") as tmp:
        venv = os.path.join(tmp, "venv")
        subprocess.run(command + ["-m", "venv", venv], check=True)
        python = venv_python(venv)
        install(python, ["all"])
        frozen = subprocess.run([python, "-m", "pip", "freeze", "--all", "--exclude-editable",
                                 "--disable-pip-version-check"],
                                stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
        version = interpreter_identity([python])["version"]
    pins = sorted((line for line in frozen.splitlines() if "==" in line and not line.startswith("pip==")),
                  key=str.lower)
    text = ("# Every package `make setup` may install, at the version it installs: written by `make lock`\n"
            "# (python make.py lock) from the dependencies declared in pyproject.toml, resolved with Python %s.\n"
            "# Never edited by hand; used as pip's --constraint, so each target installs only what it needs.\n"
            % version) + "\n".join(pins) + "\n"
    with open(LOCK, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    say("wrote %d pinned packages to requirements.lock" % len(pins))


def clean(say=print):
    removed = []
    if os.path.lexists(VENV):
        remove(VENV)
        removed.append(os.path.relpath(VENV, ROOT))
    for folder, dirs, _ in os.walk(ROOT):
        for name in list(dirs):
            if name in ("__pycache__", ".pytest_cache"):  # caches only: exercises/ and .kata/ keep every file
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
            if name in ("__pycache__", ".pytest_cache", ".git", ".venv"):
                dirs.remove(name)
    say("removed %s and the caches" % (", ".join(removed) or "nothing of .venv"))


def lab_commands(rest, lesson=None):
    """The commands of `make lab` (each run with the venv's Python): install the project's kernel, then JupyterLab
    at the repository's root. A lesson number (the first argument, or $LESSON) opens that lesson's notebook."""
    rest = list(rest)
    if rest and len(rest[0]) == 2 and rest[0].isdigit():
        lesson = rest.pop(0)
    opened = []
    if lesson:
        found = sorted(name for name in os.listdir(os.path.join(ROOT, "notebooks"))
                       if name.startswith(lesson + "_") and name.endswith(".ipynb"))
        if not found:
            raise Refused("lab %s: there is no notebooks/%s_*.ipynb; give a lesson number such as 02" % (lesson, lesson))
        opened = ["notebooks/" + found[0]]
    return [["-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL_NAME, "--display-name", KERNEL_DISPLAY],
            ["-m", "jupyterlab", "--ServerApp.root_dir=" + ROOT] + rest + opened]


def help_text():
    lines = ["Usage: make TARGET [ARGS=\"options\"]   or   python make.py TARGET [options]", ""]
    for group, title in (("student", "For students"), ("maintainer", "For the kata's maintainers")):
        lines.append(title + ":")
        lines += ["  %-10s %s" % (name, text) for name, where, text, _, _ in TARGETS if where == group]
        lines.append("")
    return "\n".join(lines).rstrip()


def run(python, arguments):
    """Run the venv's Python; Ctrl-C reaches the tool (it shares the terminal), which says what it stopped."""
    process = subprocess.Popen([python] + arguments, cwd=ROOT)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue  # the tool got the same Ctrl-C: wait for it to finish saying so


def main(argv):
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(help_text())
        return 0
    name, rest = argv[0], argv[1:]
    target = {entry[0]: entry for entry in TARGETS}.get(name)
    if target is None:
        print("make.py: no target %r\n\n%s" % (name, help_text()), file=sys.stderr)
        return 2
    _, _, _, extras, command = target
    try:
        if name == "clean":
            clean()
            return 0
        if name == "lock":
            lock()
            return 0
        steps = lab_commands(rest, os.environ.get("LESSON")) if name == "lab" else [(command or []) + rest]
        # KATA_EXTRAS adds extras of pyproject.toml (CI: lab,browser for the real-browser check)
        python = setup(",".join(filter(None, [extras, os.environ.get("KATA_EXTRAS", "")])))
        if name == "setup":
            return 0
        if name in GENERATORS:
            for step in GENERATORS[name]:
                code = run(python, step + rest)
                if code:
                    return code
            return 0
        code = 0
        for step in steps:
            code = run(python, step)
            if code:
                break
        return 130 if code in (-2, 0xC000013A) else code
    except Refused as refused:
        print(str(refused), file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print("make.py: %s failed (exit status %s); the lines above say why."
              % (" ".join(map(str, error.cmd[:4])), error.returncode), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted: %s" % name, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
