"""Load an implementation of the contract by name (solutions, exercises) or by folder path."""

import hashlib
import importlib.util
import sys
from pathlib import Path

from .places import raised_at
from .repository import NAMED, ROOT, has_reference


class ImplementationError(Exception):
    """The implementation could not be imported; the message says where and why."""


def resolve(spec):
    """'solutions', 'exercises' or a folder path -> (module name to import, folder or None)."""
    if spec in NAMED:
        return _named(spec), None
    folder = Path(spec).expanduser().resolve()
    for name in NAMED:
        if folder == ROOT / name:
            return _named(name), None
    if not (folder / "__init__.py").is_file():
        raise ImplementationError(
            f"{spec!r} is neither 'solutions', 'exercises' nor a folder laid out like exercises/ "
            f"(no {folder / '__init__.py'})")
    digest = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    return f"kata_submission_{digest}", folder


def _named(name):
    """name, a named implementation; ImplementationError for the reference where there is none (the students'
    edition)."""
    if name == "solutions" and not has_reference():  # (also what code sandboxed apart from the reference meets)
        raise ImplementationError("importing the implementation 'solutions' failed: no reference implementation "
                                  "here (no solutions/; the students' edition holds none): grade, train and play your "
                                  "own code (exercises/, the default) or a folder laid out like it")
    return name


def folder_of(spec):
    """The folder an implementation lives in: solutions/ or exercises/ of the repository, or the folder given
    (resolved); ImplementationError when spec names none."""
    name, folder = resolve(spec)
    return folder or ROOT / name


def forget(spec):
    """Drop an imported implementation (and its modules) from sys.modules, so the next load() imports it anew."""
    name, _ = resolve(spec)
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def load(spec):
    """Import an implementation and return its package module.

    Raises ImplementationError naming the file and line when the import fails for any reason.
    """
    name, folder = resolve(spec)
    if name in sys.modules:
        return sys.modules[name]
    # the named packages load from the repository even where it is not on sys.path (a notebook's kernel)
    folder = folder or ROOT / name
    try:
        module_spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    except (Exception, SystemExit) as error:  # a student's import can raise anything, even sys.exit
        forget(spec)
        raise ImplementationError(
            f"importing the implementation {spec!r} failed at {raised_at(error) or '?'}: "
            f"{type(error).__name__}: {error}") from error
