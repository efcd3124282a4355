"""The shape of kata/ (ARCHITECTURE.md): packages in layers, imports one way only, no cycle, short modules.

Imports are read from the source, at any depth (a function's own `import` counts), and so are the modules a
module starts by a command string: `python -m MODULE`, `pytest -p PLUGIN`, `python -c CODE` (CODE's imports).
"""

import ast
import re

import pytest

from kata.course.repository import ROOT

pytestmark = pytest.mark.meta
KATA = ROOT / "kata"
MAX_LINES = 400

# Each package may import only from the packages of a lower layer (and from itself). The root package `kata`
# holds one constant every process needs.
LAYERS = {"kata": 0, "kata.course": 1, "kata.sandbox": 2, "kata.testing": 3, "kata.authoring": 3,
          "kata.grading": 4, "kata.student": 5, "kata.tools": 5, "kata.instructor": 6}
# the sandbox knows nothing of lessons, the manifest or grading: of the course it may use only these
SANDBOX_MAY_USE = {"kata", "kata.course.implementation", "kata.course.places"}
COMMAND_FLAGS = ("-m", "-p", "-c")
CODE_IMPORT = re.compile(r"(?:^|[;\n]\s*)(?:from\s+(kata[\w.]*)\s+import|import\s+(kata[\w.]*))")


def modules():
    """{module name: path} of every module of kata/."""
    found = {}
    for path in sorted(KATA.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = modules()


def package_of(name):
    """The layer package a module belongs to: kata.grading.run -> kata.grading; kata -> kata."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else "kata"


def resolve(name, level, importer, is_package):
    """The absolute module an import statement names (relative imports resolved against importer)."""
    if level:
        base = importer.split(".")
        base = base[: len(base) - level + (1 if is_package else 0)]
        name = ".".join(base + ([name] if name else []))
    return name


def known(name):
    """The longest prefix of name that is a module of kata/ (kata.grading.grade.grade -> kata.grading.grade)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in MODULES:
            return ".".join(parts[:end])
    return None


def strings_of(node):
    """The text of a string constant or of an f-string's constant parts (None for anything else)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value for part in node.values if isinstance(part, ast.Constant))
    return None


def command_targets(tree):
    """Modules a source starts by command strings: the item after "-m" or "-p", the imports of "-c" code."""
    targets = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.List, ast.Tuple)):
            continue
        items = [strings_of(item) for item in node.elts]
        for flag, value in zip(items, items[1:]):
            if flag in ("-m", "-p") and value and value.startswith("kata"):
                targets.append(value)
            elif flag == "-c" and value:
                targets += [a or b for a, b in CODE_IMPORT.findall(value)]
    return targets


def edges():
    """{module: {module it imports or starts}} inside kata/."""
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = resolve(node.module or "", node.level, name, is_package)
                found |= {f"{base}.{alias.name}" if known(f"{base}.{alias.name}") else base for alias in node.names}
        found |= set(command_targets(tree))
        graph[name] = {known(target) for target in found if known(target)} - {name}
    return graph


GRAPH = edges()


def test_the_parser_sees_every_kind_of_import_and_command_string():
    source = ('import kata.course.manifest\nfrom ..sandbox import CallTimeout\n'
              'command = [python, "-m", "kata.grading.probe", "-p", "kata.grading.reporter"]\n'
              'other = [python, "-c", f"import sys; from kata.tools.train import main; main({x!r})"]\n')
    tree = ast.parse(source)
    assert command_targets(tree) == ["kata.grading.probe", "kata.grading.reporter", "kata.tools.train"]
    assert resolve("sandbox", 2, "kata.grading.reporter", False) == "kata.sandbox"
    assert resolve("", 1, "kata.tools", True) == "kata.tools"
    assert known("kata.grading.grade.grade") == "kata.grading.grade"


def test_every_package_of_kata_has_a_layer():
    packages = {package_of(name) for name in MODULES}
    assert packages == set(LAYERS), f"packages without a layer {packages - set(LAYERS)}, layers without a package " \
                                    f"{set(LAYERS) - packages}: update LAYERS and ARCHITECTURE.md"


def test_imports_and_command_strings_go_down_the_layers_only():
    upward = []
    for importer, targets in GRAPH.items():
        for target in targets:
            source, destination = package_of(importer), package_of(target)
            if source != destination and LAYERS[destination] >= LAYERS[source]:
                upward.append(f"{importer} -> {target}")
    assert not upward, "imports that reach the same or a higher layer:\n" + "\n".join(sorted(upward))


def test_the_sandbox_knows_nothing_of_lessons_or_grading():
    reached = {target for importer, targets in GRAPH.items() if package_of(importer) == "kata.sandbox"
               for target in targets if package_of(target) != "kata.sandbox"}
    assert reached <= SANDBOX_MAY_USE, f"the sandbox imports {sorted(reached - SANDBOX_MAY_USE)}"


def test_no_import_cycle_between_modules():
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(GRAPH.get(node, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    # a package's __init__ importing its own modules is not a cycle of concepts, but none exists here: keep it so
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_no_module_is_longer_than_the_limit():
    long = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    long = {name: count for name, count in long.items() if count > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_docs_name_every_package_and_nothing_refers_outside_the_repository():
    readme, architecture = (ROOT / "README.md").read_text(), (ROOT / "ARCHITECTURE.md").read_text()
    for package in LAYERS:
        if package == "kata":
            continue
        folder = package.replace(".", "/") + "/"
        assert folder in readme, f"README.md's layout does not name {folder}"
        assert folder in architecture, f"ARCHITECTURE.md does not name {folder}"
    assert (ROOT / "CONTRACT.md").is_file()
    sources = [*ROOT.glob("*.py"), *ROOT.glob("*.md"), *KATA.rglob("*.py"), *(ROOT / "tests").glob("*.py"),
               *(ROOT / "meta").rglob("*.py"), *(ROOT / "solutions").glob("*.py"), *(ROOT / "exercises").glob("*.py"),
               *(ROOT / "lessons").glob("*.md")]
    stray = [str(path.relative_to(ROOT)) for path in sources if re.search(r"\bSPEC\b", path.read_text())
             and path.name != "test_architecture.py"]
    assert not stray, f"files citing a SPEC that is not in the repository (the contract is CONTRACT.md): {stray}"
