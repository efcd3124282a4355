"""What the lesson notebooks call: the student's implementation, kept fresh, and the lesson's checks inline.

    from kata.student import notebook
    impl = notebook.load()   # exercises/ (or $KATA_IMPL); re-imported whenever one of its files is saved
    notebook.check("03")     # lesson 03's tests on that implementation: a table in Jupyter, text elsewhere

    python -m kata.student.notebook lessons/03_layers.md [--impl exercises]   # a lesson's experiments, no Jupyter
"""

import argparse
import os
import sys
import time
from pathlib import Path

from ..authoring.lessontext import SETUP, blocks, headings
from ..course.implementation import ImplementationError, folder_of, forget, resolve
from ..course.implementation import load as load_implementation
from ..course.repository import has_reference
from ..grading.grade import grade
from ..grading.settings import DEFAULT_SECONDS
from . import unfinished
from .checkview import CheckView


class LiveImplementation:
    """An implementation whose attributes are looked up in a fresh import after any of its files changed."""

    def __init__(self, spec):
        self.spec = spec
        self.folder = folder_of(spec)
        self._stamp = None
        self._module = None

    def _files_stamp(self):
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in self.folder.glob("*.py")))

    def module(self):
        """The package module, re-imported when a file of it changed since the last import."""
        stamp = self._files_stamp()
        if stamp != self._stamp:
            forget(self.spec)
            self._module = load_implementation(self.spec)
            self._stamp = stamp
        return self._module

    def __getattr__(self, attribute):
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self.module(), attribute)

    def __dir__(self):
        return dir(self.module())

    def __repr__(self):
        return f"<implementation {self.spec!r} from {self.folder}, re-imported after each save>"


def default_spec():
    """The implementation the notebooks use: $KATA_IMPL, or exercises/."""
    return os.environ.get("KATA_IMPL", "exercises")


def load(spec=None):
    """The implementation (default: $KATA_IMPL or 'exercises') as a LiveImplementation.

    An import error is printed as one line naming the file and line; outside IPython it is raised again. In
    IPython, a cell stopped by an unfinished exercise, or by a file that does not import, then prints one line and
    lets "Run All" go on to the lesson's check (kata/student/unfinished.py), which grades what does import."""
    shell = _ipython()
    unfinished.install(shell)
    live = LiveImplementation(spec or default_spec())
    try:
        live.module()
    except ImplementationError as error:
        print(error)
        if shell is None:
            raise
        print("(the cells that need it will say so; fix the file, save it, and run them again)")
    return live


def check(lesson_id, spec=None, timeout=DEFAULT_SECONDS):
    """Run one lesson's tests on the implementation (without --isolated) and show the results.

    In IPython (Jupyter) they are displayed: a table in a browser, the text in a terminal; elsewhere printed."""
    view = results(lesson_id, spec, timeout)
    if _ipython() is None:
        print(view.text())
    else:
        from IPython.display import display
        display(view)


def results(lesson_id, spec=None, timeout=DEFAULT_SECONDS):
    """One lesson's tests on the implementation, as a CheckView (HTML and text)."""
    spec = spec or default_spec()
    # the student's own run: in-process, whatever folder it names (the sandbox is for grading others' code)
    report = grade(_folder_arg(spec), [lesson_id], timeout=timeout, sandbox=False)
    return CheckView(report.lessons[0], report.notes)


def _ipython():
    """The running IPython shell, or None (plain Python, a script, a test)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython
    return get_ipython()


def _folder_arg(spec):
    name, folder = resolve(spec)
    return name if folder is None else str(folder)


def run_experiments(path, impl=None, out=sys.stdout):
    """Execute the run blocks of a lesson text in one namespace (matplotlib without a display); impl: the reference
    by default, or exercises/ where there is none (the students' edition)."""
    impl = impl or ("solutions" if has_reference() else "exercises")
    import matplotlib
    matplotlib.use("Agg")
    code_blocks = [block.text for block in blocks(Path(path).read_text(encoding="utf-8")) if block.kind == "code"]
    setup = "\n".join(line for line in SETUP.splitlines() if not line.startswith("%"))
    namespace = {"__name__": "__lesson__"}
    exec(compile(setup.replace("notebook.load()", f"notebook.load({impl!r})"), "<setup>", "exec"), namespace)
    for index, code in enumerate(code_blocks, 1):
        start = time.perf_counter()
        exec(compile(code, f"<{Path(path).name}: run block {index}>", "exec"), namespace)
        print(f"run block {index}/{len(code_blocks)}: {time.perf_counter() - start:.2f} s", file=out)
        import matplotlib.pyplot as plt
        plt.close("all")
    return len(code_blocks)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the experiments (```python run blocks) of a lesson text.")
    parser.add_argument("path", help="a lesson text, e.g. lessons/02_attention.md")
    parser.add_argument("--impl", default=None, help="the implementation the experiments run (default: solutions, "
                        "or exercises where there is no reference)")
    args = parser.parse_args(argv)
    count = run_experiments(args.path, args.impl)
    sections = headings(Path(args.path).read_text(encoding="utf-8"))
    print(f"{args.path}: {count} run blocks, all ran; sections: {sections}")


if __name__ == "__main__":
    main()
