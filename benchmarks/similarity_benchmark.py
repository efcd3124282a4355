"""The figures of `grader.py similarity`: the similarity of each kind of pair, and the time of a whole run.

    python -m benchmarks.similarity_benchmark [--runs 3]

A class of six is made in a temporary folder: `disguised` (the reference with every local renamed and independent
statements reordered: meta/disguise.py), `independent` (meta/independent/: lessons 02, 03 and 06 written anew,
the rest left as given), `copied.zip` (the reference as it is, zipped), `partial` (the reference's files of
lessons 02, 03 and 06, the rest left as given), and `stubs_a`, `stubs_b` (the stubs untouched). Printed: every
pair's similarity and both shares, the same for the files of lessons 02, 03 and 06 alone, and the median,
lowest and highest wall-clock seconds of `grader.py similarity` on the folder (a new process each run).
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from kata.course.repository import REFERENCE, ROOT
from kata.instructor import similarity as sim
from meta.disguise import disguise
from meta.helpers import write_stubs

REWRITTEN = ("attention.py", "layers.py", "loss.py")


def make_class(folder):
    folder = Path(folder)
    disguise(REFERENCE, folder / "disguised")
    write_stubs(folder / "independent")
    for path in (ROOT / "meta" / "independent").glob("*.py"):
        shutil.copyfile(path, folder / "independent" / path.name)
    with zipfile.ZipFile(folder / "copied.zip", "w") as archive:
        for path in sorted(REFERENCE.glob("*.py")):
            archive.write(path, path.name)
    write_stubs(folder / "partial")
    for name in REWRITTEN:
        shutil.copyfile(REFERENCE / name, folder / "partial" / name)
    write_stubs(folder / "stubs_a")
    write_stubs(folder / "stubs_b")
    return folder


def print_pairs(result, title):
    print(title)
    for pair in result.pairs:
        mark = "FLAGGED" if pair in result.flagged else ""
        print(f"  {pair.a:>22} ~ {pair.b:<22} similarity {pair.score:6.3f}  (shares {pair.share_a:.3f}, "
              f"{pair.share_b:.3f}; sizes {pair.size_a:.0f}, {pair.size_b:.0f}) {mark}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of grader.py similarity (default "
                                                             "%(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kata-bench-") as tmp:
        folder = make_class(Path(tmp) / "class")
        with tempfile.TemporaryDirectory() as work:
            sources, skipped = sim.read_sources(folder, work)
        print(f"k = {sim.K}, window = {sim.WINDOW}, threshold = {sim.DEFAULT_THRESHOLD:g}")
        print_pairs(sim.compare([*sources, sim.reference_source()]), "all files:")
        for source in [*sources]:
            source.files = {name: text for name, text in source.files.items() if name in REWRITTEN}
        reference = sim.reference_source()
        reference.files = {name: reference.files[name] for name in REWRITTEN}
        print_pairs(sim.compare([*sources, reference]), f"only {', '.join(REWRITTEN)}:")
        seconds = []
        for _ in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "grader.py", "similarity", str(folder), "--out",
                                   str(Path(tmp) / "report.html")], cwd=ROOT, capture_output=True, text=True)
            seconds.append(time.perf_counter() - start)
            if proc.returncode:
                raise SystemExit(proc.stderr)
        print(proc.stdout.strip())
        print(f"grader.py similarity, 6 submissions: median {statistics.median(seconds):.2f} s, lowest "
              f"{min(seconds):.2f} s, highest {max(seconds):.2f} s over {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
