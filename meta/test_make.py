"""make.py (and the Makefile that calls it): the interpreter check, when .venv is made again, the targets' groups,
and the lock holding every installed package's version."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest

from kata.course.repository import ROOT

pytestmark = pytest.mark.meta


def load_make():
    spec = importlib.util.spec_from_file_location("kata_make", ROOT / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_python(folder, major, minor):
    """An executable that answers make.py's version question as Python major.minor would."""
    path = folder / f"python{major}.{minor}"
    path.write_text(f"#!/bin/sh\necho '{major} {minor}'\n")
    path.chmod(0o755)
    return path


@pytest.mark.skipif(os.name != "posix", reason="the fake interpreter is a shell script")
def test_an_old_interpreter_is_refused_with_what_to_install(tmp_path):
    old = fake_python(tmp_path, 3, 9)
    result = subprocess.run([sys.executable, str(ROOT / "make.py"), "setup"], capture_output=True, text=True,
                            env=dict(os.environ, PYTHON=str(old), KATA_VENV=str(tmp_path / "venv")), timeout=120)
    assert result.returncode == 1
    assert "is Python 3.9" in result.stderr and "needs Python 3.11 or newer" in result.stderr
    assert re.search(r"(apt install|brew install|winget install)", result.stderr)
    assert not (tmp_path / "venv").exists()


@pytest.mark.skipif(not os.path.exists("/root/.pyenv/versions/3.9.18/bin/python3.9")
                    and not any(os.access(os.path.join(p, "python3.9"), os.X_OK)
                                for p in os.environ.get("PATH", "").split(os.pathsep)),
                    reason="no Python 3.9 on this machine")
def test_make_py_itself_runs_on_an_old_python_and_says_what_to_do(tmp_path):
    old = next(path for path in ["/root/.pyenv/versions/3.9.18/bin/python3.9",
                                 *(os.path.join(p, "python3.9") for p in os.environ["PATH"].split(os.pathsep))]
               if os.access(path, os.X_OK))
    # only old interpreters on PATH: make.py, run by 3.9, finds nothing newer and says so
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(old)
    result = subprocess.run([old, str(ROOT / "make.py"), "grade"], capture_output=True, text=True, timeout=120,
                            env={"PATH": str(bin_dir), "KATA_VENV": str(tmp_path / "venv"), "HOME": str(tmp_path)})
    assert result.returncode == 1, result.stderr
    assert "This is Python 3.9" in result.stderr and "3.11 or newer" in result.stderr


@pytest.mark.skipif(os.name != "posix", reason="the fake interpreter is a shell script")
def test_a_venv_of_an_old_or_missing_python_is_made_again(tmp_path):
    make = load_make()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    assert make.reason_to_remake(str(venv), {}) == "its Python does not run any more"
    fake = fake_python(venv / "bin", 3, 9)
    fake.rename(venv / "bin" / "python")
    assert make.reason_to_remake(str(venv), {}) == "it was made with Python 3.9"
    assert make.reason_to_remake(str(tmp_path / "none"), {}) is None


def test_a_working_venv_is_kept_unless_python_names_another_interpreter(tmp_path, monkeypatch):
    make = load_make()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    monkeypatch.delenv("PYTHON", raising=False)
    installed = {"lock": "0123"}  # (its install finished once: the state make.py writes)
    assert make.reason_to_remake(str(venv), installed) is None
    # never installed and without pip: its making was interrupted (Ctrl-C during `python -m venv`)
    assert make.reason_to_remake(str(venv), {}) == "its making was interrupted before pip was in it"
    monkeypatch.setenv("PYTHON", sys.executable)
    identity = dict(make.interpreter_identity([sys.executable]), **installed)
    assert make.reason_to_remake(str(venv), identity) is None
    other = dict(identity, version="3.11.0", python="/elsewhere/python3.11")
    assert "PYTHON=" in make.reason_to_remake(str(venv), other)


@pytest.mark.skipif(os.name != "posix", reason="a dead symbolic link")
def test_a_venv_that_is_a_dead_link_or_a_file_is_made_again(tmp_path):
    make = load_make()
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    (tmp_path / "file").write_text("not a venv\n")
    for name in ("link", "file"):
        assert make.reason_to_remake(str(tmp_path / name), {}) == "it is not a folder (a file, or a link to nothing)"
        make.remove(str(tmp_path / name))
        assert not os.path.lexists(tmp_path / name)


def test_one_command_at_a_time_sets_up_the_venv(tmp_path):
    make, said = load_make(), []
    venv = str(tmp_path / "venv")
    with make.SetupLock(venv, said.append):
        assert os.path.isdir(venv + ".setup-lock")
        other = make.SetupLock(venv, said.append)
        assert not other._abandoned(), "its owner (this process) is alive"
    assert not os.path.exists(venv + ".setup-lock")
    os.mkdir(venv + ".setup-lock")  # left by a process that is gone
    with open(os.path.join(venv + ".setup-lock", "pid"), "w") as handle:
        handle.write("999999999")
    with make.SetupLock(venv, said.append):
        pass
    assert said == [] and not os.path.exists(venv + ".setup-lock")


def test_help_puts_the_maintainers_targets_apart_and_matches_the_makefile():
    make = load_make()
    text = make.help_text()
    students, maintainers = text.split("For the kata's maintainers:")
    for name in ("grade", "test", "train", "play", "lab", "clean"):
        assert f"  {name} " in students
    for name in ("exercises", "notebooks", "bench", "lock"):
        assert f"  {name} " in maintainers and f"  {name} " not in students
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    listed = set(re.findall(r"^(?:STUDENT|MAINTAINER)_TARGETS := (.*)$", makefile, re.M)[0].split()
                 + re.findall(r"^(?:STUDENT|MAINTAINER)_TARGETS := (.*)$", makefile, re.M)[1].split())
    assert listed == {entry[0] for entry in make.TARGETS}


def _name(requirement):
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_lock_pins_every_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(r) for r in extra if not r.startswith("transformer-kata")}
    pinned = {_name(line) for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
              if "==" in line and not line.startswith("#")}
    assert declared <= pinned, f"declared but not locked: {sorted(declared - pinned)}"


def test_every_package_installed_by_make_setup_is_at_its_locked_version():
    state_file = os.path.join(sys.prefix, "kata-setup.json")
    if not os.path.exists(state_file):
        pytest.skip("this Python's environment was not made by make.py (no kata-setup.json)")
    state = json.loads(open(state_file, encoding="utf-8").read())
    if state.get("lock") != load_make().lock_digest():
        pytest.skip("requirements.lock changed since this .venv was installed")
    locked = dict(line.split("==") for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
                  if "==" in line and not line.startswith("#"))
    locked = {_name(name): version.strip() for name, version in locked.items()}
    unpinned = []
    for dist in metadata.distributions():
        name = _name(dist.metadata["Name"])
        if name in ("pip", "transformer-kata"):
            continue
        if locked.get(name) != dist.version:
            unpinned.append(f"{name}=={dist.version} (lock: {locked.get(name)})")
    assert not unpinned, f"installed, not at a locked version: {sorted(unpinned)}"
