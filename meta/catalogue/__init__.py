"""The catalogue of known-wrong implementations: mistakes students make, each one a small edit of the
reference. Every mutant must be rejected by at least one test of its own lesson (meta/test_catalogue.py).

    python -m meta.catalogue [--lesson 03] [--id layernorm-no-mean-term]   # run some by hand
    python -m meta.catalogue --lesson 02 --variant 3       # ... on a hidden variant's inputs (grader.py --variant)
    python -m meta.catalogue --equivalents [--variant 3]   # the correct variants (equivalents.py): each must pass
"""

import argparse
import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from kata.course.exercises import enclosing_symbols, exercise_index
from kata.course.manifest import lessons, reread
from kata.course.repository import ROOT
from kata.grading.reporter import message


@dataclass(frozen=True)
class Mutant:
    id: str  # unique slug
    lesson: str  # "03": the lesson whose tests must reject it
    file: str  # the file of solutions/ to edit
    description: str  # the mistake, as a student would make it
    find: str  # text that occurs exactly once in solutions/<file>
    replace: str
    first_failure: str = ""  # if given, a regular expression the first failure ("test_name: message") must match
    section: str = ""  # the section its first failure must name, when not that of the exercise it edits
    more: tuple = ()  # further edits (file, find, replace), each applying exactly once, for a mistake spanning files
    says: str = ""  # when set, the first failure's message must contain it (the test that catches it says so)

    def edits(self):
        """Every (file, find, replace) edit of the mutant."""
        return ((self.file, self.find, self.replace), *self.more)


def catalogue():
    """Every mutant of meta/catalogue/lessonNN.py, in lesson order."""
    result = []
    for item in lessons():
        path = Path(__file__).with_name(f"lesson{item.id}.py")
        if path.exists():
            result += importlib.import_module(f"meta.catalogue.lesson{item.id}").MUTANTS
    return result


def mutated_source(mutant):
    """{file: text of solutions/<file> with the mutant's edits}; fails if an edit does not apply exactly once."""
    sources = {}
    for file, find, replace in mutant.edits():
        source = sources.get(file) or (ROOT / "solutions" / file).read_text()
        count = source.count(find)
        if count != 1:
            raise ValueError(f"mutant {mutant.id}: its text occurs {count} times in solutions/{file}, "
                             f"expected once (did the reference change?)")
        sources[file] = source.replace(find, replace)
    return sources


def build(mutant, folder):
    """Write a copy of solutions/ with the mutant applied into folder (created); return the folder."""
    folder = Path(folder)
    shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    for file, text in mutated_source(mutant).items():
        compile(text, str(folder / file), "exec")  # a mutant must be wrong code, not broken syntax
        (folder / file).write_text(text)
    return folder


def expected_pointer(mutant):
    """The pointer the first failure of mutant must give: `reread lessons/NN_name.md, section "..."` of its
    section, or else of the section the manifest lists for the exercise whose code it edits."""
    if mutant.section:
        return reread(mutant.lesson, mutant.section)
    source = (ROOT / "solutions" / mutant.file).read_text()
    line = source[: source.index(mutant.find)].count("\n") + 1 + len(mutant.find) - len(mutant.find.lstrip("\n"))
    symbol = enclosing_symbols(source).get(line)
    found = exercise_index().get((mutant.file, symbol))
    if found is None:
        raise ValueError(f"mutant {mutant.id}: it edits {symbol or 'no function'} of {mutant.file}, not an "
                         f"exercise of manifest.toml: give it a section")
    return reread(found[0], found[1])


class _Outcomes:
    """A pytest plugin that keeps the outcome of every test of one run, each failure as the grader's report shows
    it (kata.grading.reporter.message)."""

    def __init__(self, folder):
        self.failed, self.passed, self.folder = [], 0, folder

    def pytest_configure(self, config):
        config.option.tbstyle = "native"  # Python's own tracebacks: pytest's long ones cost ~0.1 s each to format

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: after pytest-check has made its failures the report's
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if report.failed:
            report.catalogue_message = message(report, call.excinfo, self.folder)
            # what -x does, without -x: pytest-check would then raise a bare AssertionError, not the message graded
            item.session.shouldfail = "the first failure"
        return report

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(f"{report.nodeid.split('::')[-1]}: {getattr(report, 'catalogue_message', 'failed')}")
        elif report.passed and report.when == "call":
            self.passed += 1


def run_here(mutant, variant=None):
    """Run the mutant's lesson against it in this process; return (rejected, first failure or summary). variant: a
    SEED, the tests' inputs drawn from it (pytest's --variant), or None for the public tests.

    Stops at the first failing test. Each mutant is imported under a name of its own, so runs do not mix.
    """
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as tmp:
        folder = build(mutant, Path(tmp) / "impl")
        outcomes = _Outcomes(folder)
        # (the terminal plugin is kept: pytest's assertion rewriting needs it to describe a failed `==`)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            # the lesson's own test files only: collecting the whole suite for every mutant costs most of the time
            files = [str(path) for path in sorted((ROOT / "tests").glob(f"test_lesson{mutant.lesson}_*.py"))]
            # (no:unraisableexception: its clean-up runs gc.collect five times per run, a third of a mutant's time)
            varied = [] if variant is None else ["--variant", str(variant)]
            code = pytest.main(["-q", "-p", "no:unraisableexception", "--impl", str(folder), *varied,
                                "-m", f"lesson{mutant.lesson}", *files], plugins=[outcomes])
    if code not in (0, 1):  # 1: tests ran and some failed; 0: all passed; anything else: a broken run
        raise RuntimeError(f"mutant {mutant.id}: pytest exited with {code}: {outcomes.failed}")
    if code == 1:
        return True, outcomes.failed[0] if outcomes.failed else "failed"
    return False, f"all {outcomes.passed} tests of lesson {mutant.lesson} passed"


def run_all(mutants, workers=None, timeout=600, variant=None):
    """{id: (rejected, detail)} for every mutant (or Equivalent), in worker processes that each run many of them;
    variant: a SEED for the tests' inputs (None: the public tests)."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(mutants)))
    chunks = [mutants[k::workers] for k in range(workers)]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OPENBLAS_NUM_THREADS="1")
    varied = [] if variant is None else ["--variant", str(variant)]
    procs = [subprocess.Popen([sys.executable, "-m", "meta.catalogue", *varied, "--worker", *[m.id for m in chunk]],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for chunk in chunks if chunk]
    verdicts = {}
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        for line in out.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                verdicts[record["id"]] = (record["rejected"], record["detail"])
        if proc.returncode != 0:
            raise RuntimeError(f"a catalogue worker exited with {proc.returncode}:\n{err[-3000:]}")
    return verdicts


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run mutants of the catalogue against their lesson's tests.")
    parser.add_argument("--lesson")
    parser.add_argument("--id")
    parser.add_argument("--variant", type=int, metavar="SEED", help="draw the tests' inputs from SEED, as grader.py "
                        "--variant does (default: the public tests)")
    parser.add_argument("--equivalents", action="store_true", help="run the correct variants (equivalents.py) "
                        "instead: each must pass every test of its lesson")
    parser.add_argument("--worker", nargs="+", metavar="ID", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from .equivalents import EQUIVALENTS  # (a module of this package, which it imports)
    by_id = {m.id: m for m in [*catalogue(), *EQUIVALENTS]}
    if args.worker:  # one JSON line per mutant, for run_all
        for mutant_id in args.worker:
            rejected, detail = run_here(by_id[mutant_id], args.variant)
            print(json.dumps({"id": mutant_id, "rejected": rejected, "detail": detail}), flush=True)
        return 0
    chosen = [m for m in (EQUIVALENTS if args.equivalents else catalogue())
              if (not args.lesson or m.lesson == args.lesson) and (not args.id or m.id == args.id)]
    verdicts = run_all(chosen, variant=args.variant)
    if args.equivalents:
        for equivalent in chosen:
            rejected, detail = verdicts[equivalent.id]
            print(f"{'REJECTED' if rejected else 'passed'}  lesson{equivalent.lesson}  {equivalent.id}  {detail[:150]}")
        wrong = sum(rejected for rejected, _ in verdicts.values())
        print(f"{len(chosen) - wrong} of {len(chosen)} correct variants pass")
        return 1 if wrong else 0
    survivors, elsewhere = 0, []
    for mutant in chosen:
        rejected, detail = verdicts[mutant.id]
        print(f"{'rejected' if rejected else 'SURVIVED'}  lesson{mutant.lesson}  {mutant.id}  {detail[:150]}")
        survivors += not rejected
        if rejected and expected_pointer(mutant) not in detail:
            elsewhere.append(f"  {mutant.id}: expected {expected_pointer(mutant)!r}, got: {detail}")
    print(f"{len(chosen) - survivors} of {len(chosen)} rejected; {len(chosen) - survivors - len(elsewhere)} first "
          f"failures name the section to reread" + "".join(f"\n{line}" for line in elsewhere))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
