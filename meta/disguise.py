"""A disguised copy of the reference, as a student who copied it might hand it in: every local variable and
parameter of every function renamed, and each run of independent consecutive assignments put in another order.
meta/test_similarity.py requires the similarity report to flag it against the reference.

    disguise(REFERENCE, target)          # target/*.py, still passing every lesson test

Kept: module-level names, class and method names, attributes (the contract's names), the parameters callers may
pass by keyword (those with a default value, `softmax(x, axis=-1)`, and those the lesson tests name in a call,
`warmup_cosine_lr(step, base_lr=0.5, ...)`), and every name a function only reads from the module (np, math,
check_array, ...). Renamed: everything else bound in a function, `self` included. Comments go (ast.unparse drops
them); docstrings stay.
"""

import ast
import random
from pathlib import Path

from kata.course.repository import ROOT

WORDS = ("amber", "birch", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper", "kelp",
         "lumen", "marble", "nectar", "onyx", "pebble", "quartz", "raven", "sorrel", "tundra", "umber", "velvet",
         "willow", "xenon", "yarrow", "zephyr")


def _functions(tree):
    """Every outermost function of the module: module-level functions and the methods of its classes (nested
    functions are renamed with the function holding them, which may share names with them)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
        elif isinstance(node, ast.ClassDef):
            yield from (item for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))


def keyword_names(tests=ROOT / "tests"):
    """Every keyword argument name in a call of the lesson tests: the parameter names they may pass by keyword."""
    return {keyword.arg for path in sorted(Path(tests).glob("*.py"))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) for keyword in node.keywords if keyword.arg}


def _parameters(function, keep_defaulted, keywords=frozenset()):
    """The parameter names of function that may be renamed (keep_defaulted: less those with a default value, and
    those in keywords)."""
    args = function.args
    positional = args.posonlyargs + args.args
    defaulted = {a.arg for a in positional[len(positional) - len(args.defaults):]} if args.defaults else set()
    defaulted |= {a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None}
    names = [a.arg for a in positional + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return {name for name in names if not (keep_defaulted and (name in defaulted or name in keywords))}


def _locals(function):
    """Every name bound inside function (parameters of nested functions, assignments, loop and comprehension
    variables, nested function names), less the names declared global or nonlocal."""
    bound, declared = set(), set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not function:
            if not isinstance(node, ast.Lambda):
                bound.add(node.name)
            bound |= _parameters(node, keep_defaulted=False)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared |= set(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound - declared


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node):
        node.arg = self.mapping.get(node.arg, node.arg)
        return node

    def visit_FunctionDef(self, node):
        if node.name in self.mapping:
            node.name = self.mapping[node.name]
        self.generic_visit(node)
        return node

    def visit_ExceptHandler(self, node):
        if node.name in self.mapping:
            node.name = self.mapping[node.name]
        self.generic_visit(node)
        return node


def rename_locals(tree, rng, taken, keywords):
    """Rename, consistently within each outermost function, its locals and its parameters but those callers may
    pass by keyword."""
    for function in _functions(tree):
        renamed = _parameters(function, True, keywords)
        kept = _parameters(function, keep_defaulted=False) - renamed
        names = sorted((renamed | _locals(function)) - kept)
        mapping = {}
        for name in names:
            while True:
                new = f"{rng.choice(WORDS)}_{rng.randrange(100)}"
                if new not in taken:
                    break
            taken.add(new)
            mapping[name] = new
        _Renamer(mapping).visit(function)


# ---------------------------------------------------------------- reordering

def _reads(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _movable(statement):
    """(writes, reads) of an assignment to plain names whose value calls no method reached through self (a method
    may change its object: self.linear1.forward(x) keeps a cache); None for any other statement. Run before
    the renaming, while self is still called self."""
    if not isinstance(statement, ast.Assign):
        return None
    targets = [n for t in statement.targets for n in ast.walk(t)]
    if not all(isinstance(n, (ast.Name, ast.Tuple, ast.Store)) for n in targets):
        return None
    for call in (n for n in ast.walk(statement.value) if isinstance(n, ast.Call)):
        function = call.func
        while isinstance(function, ast.Attribute):
            function = function.value
        if isinstance(function, ast.Name) and function.id == "self":
            return None
    writes = {n.id for n in targets if isinstance(n, ast.Name)}
    return writes, _reads(statement.value)


def _groups(body):
    """body cut into runs: each a list of consecutive statements with no data dependency between any two."""
    runs, current, seen = [], [], []
    for statement in body:
        effect = _movable(statement)
        independent = effect is not None and all(
            not (effect[0] & (w | r)) and not (effect[1] & w) for w, r in seen)
        if not independent:
            if current:
                runs.append(current)
            current, seen = [], []
            if effect is None:
                runs.append([statement])
                continue
        current.append(statement)
        seen.append(effect)
    if current:
        runs.append(current)
    return runs


def reorder(tree, rng):
    """Put every run of independent consecutive assignments, in every block, in another order; returns how many
    runs were reordered."""
    moved = 0
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.stmt):
                continue
            result = []
            for run in _groups(body):
                if len(run) > 1:
                    shuffled = run[::-1] if len(run) == 2 else rng.sample(run, len(run))
                    while shuffled == run:
                        shuffled = rng.sample(run, len(run))
                    run, moved = shuffled, moved + 1
                result.extend(run)
            setattr(node, field, result)
    return moved


def disguise_source(source, seed=0, keywords=None):
    """(the disguised source, how many runs were reordered)."""
    keywords = keyword_names() if keywords is None else keywords
    tree = ast.parse(source)
    rng = random.Random(seed)
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    taken |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    moved = reorder(tree, rng)
    rename_locals(tree, rng, taken, keywords)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n", moved


def disguise(source_folder, target, seed=0):
    """Write the disguised copy of every .py file of source_folder into target (created); returns target and the
    number of reordered runs per file."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    moved, keywords = {}, keyword_names()
    for path in sorted(Path(source_folder).glob("*.py")):
        text, moved[path.name] = disguise_source(path.read_text(encoding="utf-8"), seed, keywords)
        (target / path.name).write_text(text, encoding="utf-8")
    return target, moved
