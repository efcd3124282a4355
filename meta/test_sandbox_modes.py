"""The sandbox where it has less to work with than root with namespaces (meta/test_adversarial.py covers that):

- "user-namespace": the grader runs as an ordinary user (here `nobody`); the child gets its namespaces from a user
  namespace of its own;
- "no-namespaces": the grader runs as root where namespaces cannot be made (a container that forbids them;
  simulated with KATA_SANDBOX_NAMESPACES=0); each child runs as a uid of its own, and file permissions close the
  reference and the tests to it (the grader closes them itself where they were open, so this mode grades a copy
  of the repository).

Each mode grades a few submissions of the adversarial catalogue in a process of its own, set up as that mode
needs. Setting up either needs root (to become another user, and to let that user run this Python where it lives
under a home only root can enter), so both are skipped when the tests do not run as root.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kata.course.repository import ROOT

pytestmark = pytest.mark.meta

# (attack id, expected score (None: any), a phrase the report must contain); graded two at a time in this order,
# so kill-the-grader runs beside the correct submission
# (grader-memory is the reference plus a check at import: it must get full marks; kill-the-grader's own score is
# checked against its plain twin in meta/test_adversarial.py: here what matters is the grading beside it)
MODES = {
    "user-namespace": [("grader-memory", 6.0, ""), ("read-reference", 0.0, "FileNotFoundError"),
                       ("nested-namespace-unmount", 0.0, "FileNotFoundError")],
    "no-namespaces": [("kill-the-grader", None, "still here"), ("correct", 6.0, ""),
                      ("read-reference", 0.0, "Permission denied"), ("damage-repository", 0.0, "")],
}


def check(mode, found):
    for attack, score, says in MODES[mode]:
        result = found[attack]
        expected = score
        if expected is not None:
            assert result["score"] == expected, (f"{attack}: scored {result['score']}, expected {expected}\n"
                                                 f"{result['text']}")
        assert says in result["text"], result["text"]
        assert result["seconds"] < 40, f"{attack}: grading took {result['seconds']:.1f} s"


def _world_can_reach(path):
    """Whether any user may enter every folder down to path and read it."""
    path = Path(path).resolve()
    return all(os.stat(part).st_mode & 0o001 for part in [*path.parents, path]) and os.stat(path).st_mode & 0o004


def _setup(become):
    """(preexec of the worker) A private mount namespace in which every folder this Python needs can be entered
    by anyone (a home only root may enter is replaced by an empty one with those folders bound back); then, if
    become, the worker runs as that user."""
    from kata.sandbox.confinement import CLONE_NEWNS, MS_PRIVATE, MS_REC, empty_but, libc_call, mount
    from kata.sandbox.confinement import become as _become
    libc_call("unshare", CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    needed = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)})
    for top in sorted({"/" + Path(path).parts[1] for path in needed}):
        if not os.stat(top).st_mode & 0o001:
            empty_but(top, needed, "size=64k")
    if become is not None:
        _become(become)


def run_mode(mode, repository, become):
    """Grade MODES[mode]'s submissions in a worker set up for mode: {attack id: what the worker found}."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KATA_", "PYTEST_"))}
    if mode == "no-namespaces":
        env["KATA_SANDBOX_NAMESPACES"] = "0"
    done = subprocess.run([sys.executable, "-m", "meta.test_sandbox_modes", *[a for a, _, _ in MODES[mode]]],
                          cwd=repository, env=env, capture_output=True, text=True, timeout=600,
                          preexec_fn=lambda: _setup(become))
    assert done.returncode == 0, f"the {mode} worker failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    found = json.loads(done.stdout.strip().splitlines()[-1])
    if "refused" in found:  # the grader refused to run the attacks unconfined here: that is the right outcome
        pytest.skip(f"the {mode} set-up cannot confine the child here, and the grader refused: {found['refused']}")
    return found


def nobody():
    from kata.sandbox import Policy
    from kata.sandbox.accounts import sandbox_user
    return sandbox_user(Policy(hidden=()))


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can set up another user's view of the machine")


@needs_root
def test_an_ordinary_user_gets_namespaces_of_its_own():
    if not _world_can_reach(ROOT):
        pytest.skip(f"{ROOT} is not readable by other users, so the grader cannot run as one of them")
    found = run_mode("user-namespace", ROOT, nobody())
    check("user-namespace", found)
    for result in found.values():
        assert result["notes"] == [], "an ordinary user's child should have had namespaces of its own"


@needs_root
def test_root_without_namespaces_runs_the_child_as_another_user_the_reference_closed_to_it():
    with tempfile.TemporaryDirectory(prefix="kata-modes-") as tmp:
        copy = Path(tmp) / "repository"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", ".kata", "__pycache__", "*.ipynb",
                                                                  "checkpoints"))
        os.chmod(tmp, 0o755)
        assert os.stat(copy / "solutions").st_mode & 0o005, "the copy should start readable by everyone"
        found = run_mode("no-namespaces", copy, None)
        for name in ("solutions", "tests"):
            assert not os.stat(copy / name).st_mode & 0o077, f"{name}/ of the copy was not closed to other users"
    check("no-namespaces", found)
    for result in found.values():
        assert any("sandbox without namespaces" in note and "(a uid of its own)" in note
                   for note in result["notes"]), result["notes"]
    assert found["damage-repository"]["canary"] == "still here\n"
    assert found["damage-repository"]["manifest_bytes"] > 1000


def worker(attack_ids):
    """Build and grade each attack (two at a time) as this process is set up; print one line of JSON."""
    from kata.sandbox import NotContained
    from meta.test_adversarial import ATTACKS, CANARY, HONEST, grade_all, report_text
    catalogue = {a.id: a for a in [*HONEST.values(), *ATTACKS]}
    base = Path(tempfile.mkdtemp(prefix="kata-modes-"))
    canary = ROOT / ".kata" / CANARY
    try:
        canary.parent.mkdir(exist_ok=True)
        canary.write_text("still here\n")
    except OSError:
        canary = None
    try:
        graded = grade_all([catalogue[i] for i in attack_ids], base)
    except NotContained as refused:  # the grader would not run them unconfined: nothing ran
        shutil.rmtree(base, ignore_errors=True)
        print(json.dumps({"refused": str(refused)}))
        return
    found = {attack_id: {"score": result["score"], "seconds": seconds, "text": report_text(result)[:3000],
                         "notes": result["notes"]} for attack_id, (result, seconds) in graded.items()}
    if canary is not None and "damage-repository" in found:
        found["damage-repository"]["canary"] = canary.read_text() if canary.exists() else None
        grading = ROOT / "manifest.toml"
        found["damage-repository"]["manifest_bytes"] = grading.stat().st_size if grading.exists() else 0
    shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(found))


if __name__ == "__main__":
    worker(sys.argv[1:])
