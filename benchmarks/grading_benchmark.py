"""Grade a copy of the reference as a submission, sandboxed and not, several times; print the figures.

    python -m benchmarks.grading_benchmark [--runs 3] [--lessons 06 07]

Per mode (sandboxed: kata/sandbox/, as `grader.py --impl PATH` does by default; in-process: `--no-sandbox`):
the median, lowest and highest wall-clock seconds of a whole grading, and the median seconds of each lesson's
run (two lessons run at a time, so those overlap). The runs alternate between the modes, so a change in the
machine's load falls on both. The score must be full in every run; otherwise the benchmark stops.
"""

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from kata.course.manifest import lessons
from kata.course.repository import ROOT
from kata.grading.grade import grade


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="gradings per mode (default %(default)s)")
    parser.add_argument("--lessons", nargs="*", default=None, help="lesson ids (default: all)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kata-bench-") as tmp:
        folder = Path(tmp) / "submission"
        shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
        modes = {"sandboxed": True, "in-process": False}
        walls = {mode: [] for mode in modes}
        per_lesson = {mode: {} for mode in modes}
        grade(str(folder), args.lessons, sandbox=False)  # warm: the reference's test ids are collected once
        for run in range(args.runs):
            for mode, sandbox in modes.items():
                start = time.perf_counter()
                result = grade(str(folder), args.lessons, sandbox=sandbox)
                walls[mode].append(time.perf_counter() - start)
                if not result.done:
                    raise SystemExit(f"{mode} run {run}: the reference scored {result.score}/{result.max_score}")
                for entry in result.lessons:
                    per_lesson[mode].setdefault(entry.id, []).append(entry.seconds)
                print(f"run {run + 1}/{args.runs} {mode:10s} {walls[mode][-1]:6.1f} s", flush=True)
    print()
    print(f"{'mode':12s} {'median':>8s} {'lowest':>8s} {'highest':>8s}   (seconds for the whole grading, "
          f"{args.runs} runs)")
    for mode in modes:
        values = walls[mode]
        print(f"{mode:12s} {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f}")
    ids = [item.id for item in lessons() if args.lessons is None or item.id in args.lessons]
    print()
    print("median seconds per lesson: " + "  ".join(f"{i}" for i in ids))
    for mode in modes:
        print(f"{mode:12s} " + "  ".join(f"{statistics.median(per_lesson[mode][i]):4.1f}" for i in ids))
    print(f"\nratio sandboxed / in-process (medians): "
          f"{statistics.median(walls['sandboxed']) / statistics.median(walls['in-process']):.2f}")


if __name__ == "__main__":
    main()
