"""The catalogue of known-wrong implementations: mistakes students make, each one a small edit of the
reference. Every mutant must be rejected by at least one test of its own lesson (meta/test_catalogue.py).

    python -m meta.catalogue [--lesson 03] [--id layernorm-no-mean-term]   # run some by hand
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

from kata.course.manifest import lessons
from kata.course.repository import ROOT


@dataclass(frozen=True)
class Mutant:
    id: str  # unique slug
    lesson: str  # "03": the lesson whose tests must reject it
    file: str  # the file of solutions/ to edit
    description: str  # the mistake, as a student would make it
    find: str  # text that occurs exactly once in solutions/<file>
    replace: str
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


class _Outcomes:
    """A pytest plugin that keeps the outcome of every test of one run."""

    def __init__(self):
        self.failed, self.passed = [], 0

    def pytest_configure(self, config):
        config.option.tbstyle = "native"  # Python's own tracebacks: pytest's long ones cost ~0.1 s each to format

    def pytest_runtest_logreport(self, report):
        if report.failed:
            crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None) or str(report.longrepr)
            self.failed.append(f"{report.nodeid.split('::')[-1]}: {crash.strip().splitlines()[0][:300]}")
        elif report.passed and report.when == "call":
            self.passed += 1


def run_here(mutant):
    """Run the mutant's lesson against it in this process; return (rejected, first failure or summary).

    Stops at the first failing test. Each mutant is imported under a name of its own, so runs do not mix.
    """
    import pytest

    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as tmp:
        folder = build(mutant, Path(tmp) / "impl")
        outcomes = _Outcomes()
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            # the lesson's own test files only: collecting the whole suite for every mutant costs most of the time
            files = [str(path) for path in sorted((ROOT / "tests").glob(f"test_lesson{mutant.lesson}_*.py"))]
            # (no:unraisableexception: its clean-up runs gc.collect five times per run, a third of a mutant's time)
            # (--assert=plain: without the terminal plugin, a rewritten `assert a < b` fails inside pytest's
            # comparison report and the failure's own message is lost)
            code = pytest.main(["-x", "-p", "no:terminal", "-p", "no:unraisableexception", "--assert=plain",
                                "--impl", str(folder),
                                "-m", f"lesson{mutant.lesson}", *files], plugins=[outcomes])
    if code not in (0, 1):  # 1: tests ran and some failed; 0: all passed; anything else: a broken run
        raise RuntimeError(f"mutant {mutant.id}: pytest exited with {code}: {outcomes.failed}")
    if code == 1:
        return True, outcomes.failed[0] if outcomes.failed else "failed"
    return False, f"all {outcomes.passed} tests of lesson {mutant.lesson} passed"


def run_all(mutants, workers=None, timeout=600):
    """{id: (rejected, detail)} for every mutant, in worker processes that each run many mutants."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(mutants)))
    chunks = [mutants[k::workers] for k in range(workers)]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OPENBLAS_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "meta.catalogue", "--worker", *[m.id for m in chunk]],
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
    parser.add_argument("--worker", nargs="+", metavar="ID", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    by_id = {m.id: m for m in catalogue()}
    if args.worker:  # one JSON line per mutant, for run_all
        for mutant_id in args.worker:
            rejected, detail = run_here(by_id[mutant_id])
            print(json.dumps({"id": mutant_id, "rejected": rejected, "detail": detail}), flush=True)
        return 0
    chosen = [m for m in by_id.values()
              if (not args.lesson or m.lesson == args.lesson) and (not args.id or m.id == args.id)]
    verdicts = run_all(chosen)
    survivors = 0
    for mutant in chosen:
        rejected, detail = verdicts[mutant.id]
        print(f"{'rejected' if rejected else 'SURVIVED'}  lesson{mutant.lesson}  {mutant.id}  {detail[:150]}")
        survivors += not rejected
    print(f"{len(chosen) - survivors} of {len(chosen)} rejected")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
