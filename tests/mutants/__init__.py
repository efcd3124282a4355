"""The catalogue of known-wrong implementations: mistakes students make, each one a small edit of the
reference. Every mutant must be rejected by at least one test of its own lesson (tests/test_catalogue.py).

    python -m tests.mutants [--lesson 03] [--id layernorm-no-mean-term]   # run some by hand
"""

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kata.manifest import ROOT, lessons


@dataclass(frozen=True)
class Mutant:
    id: str  # unique slug
    lesson: str  # "03": the lesson whose tests must reject it
    file: str  # the file of solutions/ to edit
    description: str  # the mistake, as a student would make it
    find: str  # text that occurs exactly once in solutions/<file>
    replace: str


def catalogue():
    """Every mutant of tests/mutants/lessonNN.py, in lesson order."""
    result = []
    for item in lessons():
        path = Path(__file__).with_name(f"lesson{item.id}.py")
        if path.exists():
            result += importlib.import_module(f"tests.mutants.lesson{item.id}").MUTANTS
    return result


def mutated_source(mutant):
    """The text of solutions/<file> with the mutant's edit; fails if the edit does not apply exactly once."""
    source = (ROOT / "solutions" / mutant.file).read_text()
    count = source.count(mutant.find)
    if count != 1:
        raise ValueError(f"mutant {mutant.id}: its text occurs {count} times in solutions/{mutant.file}, "
                         f"expected once (did the reference change?)")
    return source.replace(mutant.find, mutant.replace)


def build(mutant, folder):
    """Write a copy of solutions/ with the mutant applied into folder (created); return the folder."""
    folder = Path(folder)
    shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = mutated_source(mutant)
    compile(text, str(folder / mutant.file), "exec")  # a mutant must be wrong code, not broken syntax
    (folder / mutant.file).write_text(text)
    return folder


def run(mutant, timeout=120):
    """Run the mutant's lesson against it; return (rejected, pytest output). Stops at the first failure."""
    marker = f"lesson{mutant.lesson}"
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as tmp:
        folder = build(mutant, Path(tmp) / "impl")
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OPENBLAS_NUM_THREADS="1")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "--no-header", "-p", "no:randomly",
             "--impl", str(folder), "-m", marker, str(ROOT / "tests")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    # exit code 1: tests ran and some failed; 0 means all passed; anything else is a broken run
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"mutant {mutant.id}: pytest exited with {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc.returncode == 1, proc.stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run mutants of the catalogue against their lesson's tests.")
    parser.add_argument("--lesson")
    parser.add_argument("--id")
    args = parser.parse_args(argv)
    chosen = [m for m in catalogue() if (not args.lesson or m.lesson == args.lesson) and (not args.id or m.id == args.id)]
    survivors = 0
    for mutant in chosen:
        rejected, output = run(mutant)
        first_failure = next((line for line in output.splitlines() if line.startswith("FAILED")), "")
        print(f"{'rejected' if rejected else 'SURVIVED'}  lesson{mutant.lesson}  {mutant.id}  {first_failure[:150]}")
        survivors += not rejected
    print(f"{len(chosen) - survivors} of {len(chosen)} rejected")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
