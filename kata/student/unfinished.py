"""In Jupyter, a cell stopped by an unfinished exercise prints one line instead of a traceback, and "Run All" goes on.

    unfinished.install(get_ipython())   # done by notebook.load(), i.e. by every notebook's setup cell

A stub of exercises/ raises NotImplementedError('softmax (lesson 02) is not implemented yet: reread
lessons/02_attention.md, section "Softmax"'). Such a cell prints

    Unfinished exercise: softmax (lesson 02) is not implemented yet: reread lessons/02_attention.md, section "Softmax"

and counts as run, not failed: Jupyter's "Run All" (and nbclient) stop at the first cell whose execution reply is
an error, so the cell's error is cleared after it ran (IPython's post_run_cell event sees the ExecutionResult
before the kernel builds its reply). A later cell that fails only because it needs a name such a cell never got to
define (NameError) prints one line naming the name and the exercise, and counts as run too; so does a cell stopped
because a file of the implementation does not import (ImplementationError: the file and line). Any other error,
a NotImplementedError that is not a stub's included, shows its usual traceback and stops "Run All" as before.
"""

import ast
import re

from ..course.implementation import ImplementationError

# the message of every stub (kata/course/exercises.py: stub_source writes it; meta/test_jupyter.py checks they agree)
STUB_MESSAGE = re.compile(r'^(?P<symbol>\S+) \(lesson (?P<lesson>\d+)\) is not implemented yet: '
                          r'reread (?P<text>\S+), section "(?P<section>[^"]*)"$')


class Unfinished:
    """The state of one IPython shell: which names the cells stopped by an unfinished exercise left undefined."""

    def __init__(self, shell):
        self.shell = shell
        self.missing = {}  # name -> the stub message that kept it from being defined
        self.handled = None  # the exception the handler turned into one line, during the cell that raised it

    def line_for(self, error):
        """The one line to print for an error raised by an unfinished exercise, or None for any other error."""
        if isinstance(error, NotImplementedError) and STUB_MESSAGE.match(str(error)):
            return f"Unfinished exercise: {error}"
        if isinstance(error, ImplementationError):
            return f"Cannot run yet: {error}"
        if isinstance(error, NameError) and getattr(error, "name", None) in self.missing:
            return f"Skipped: needs `{error.name}`, left undefined above by an unfinished exercise: " \
                   f"{self.missing[error.name]}"
        return None

    def handler(self, shell, etype, value, tb, tb_offset=None):
        """IPython's custom exception handler (set_custom_exc) for NotImplementedError, NameError and
        ImplementationError (a file of the implementation that does not import)."""
        line = self.line_for(value)
        if line is None:  # not ours: the usual traceback, and the cell fails as it always did
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return None
        self.handled = value
        print(line)
        return None

    def post_run_cell(self, result):
        """After a cell: if it was stopped by an unfinished exercise, note what it left undefined and let it pass."""
        handled, self.handled = self.handled, None
        if result is None or handled is None or result.error_in_exec is not handled:
            return
        cause = self.missing.get(handled.name) if isinstance(handled, NameError) else str(handled)
        for name in assigned_names(self.shell, result.info.raw_cell if result.info else ""):
            if name not in self.shell.user_ns:
                self.missing[name] = cause
        result.error_in_exec = None  # the kernel's reply is "ok": Run All goes on

    def pre_run_cell(self, info):
        self.handled = None


def assigned_names(shell, source):
    """The names a cell's top-level code binds (assignments, for/with targets, imports, def and class)."""
    try:
        tree = ast.parse(shell.transform_cell(source) if shell is not None else source)
    except (SyntaxError, ValueError):
        return set()
    names, todo = set(), list(tree.body)
    while todo:  # the cell's own scope: not inside functions, classes, lambdas or comprehensions
        node = todo.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        todo.extend(ast.iter_child_nodes(node))
    return names


_INSTALLED = {}  # id(shell) -> Unfinished


def install(shell):
    """Register the handler in an IPython shell (get_ipython()); nothing when shell is None (plain Python).

    Returns the Unfinished state, or None. Installing twice in one shell changes nothing."""
    if shell is None:
        return None
    state = _INSTALLED.get(id(shell))
    if state is not None and state.shell is shell:
        return state
    state = _INSTALLED[id(shell)] = Unfinished(shell)
    shell.set_custom_exc((NotImplementedError, NameError, ImplementationError), state.handler)
    shell.events.register("pre_run_cell", state.pre_run_cell)
    shell.events.register("post_run_cell", state.post_run_cell)
    return state
