"""How long Ctrl-C takes to stop grading, watching and a notebook's check, with an exercise that loops forever.

    python -m benchmarks.interrupt_benchmark [--runs 5] [--busy 2]

Each run starts `grader.py --lesson 02` (or `grader.py watch --lesson 02`, or `notebook.check('02')` in a Jupyter
kernel) on a student's copy whose softmax loops forever, waits until a test of lesson 02 runs, sends SIGINT (the
kernel: "Interrupt kernel") and measures the seconds until the grader exits (the kernel answers the cell), and
whether any process of the run is left. Then the same with --busy processes spinning on the CPU alongside
(`python -c "while True: pass"`). Prints the median, lowest and highest per case.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meta.helpers import interrupt_grader, kernel_checking, looping_copy, marked_processes, reply_to, wait_for

LIMIT = 120.0


def grader_run(folder, args, stdin):
    code, _, _, left, seconds = interrupt_grader(folder, args, stdin, "02", LIMIT)
    return seconds, code, len(left)


def kernel_run(folder):
    with kernel_checking(folder, "02", LIMIT) as (manager, client, request, marker, kernel):
        start = time.monotonic()
        manager.interrupt_kernel()
        reply_to(client, request, LIMIT)
        seconds = time.monotonic() - start
        wait_for(lambda: set(marked_processes(marker)) <= kernel, 10)
        return seconds, "KeyboardInterrupt in the cell", len(set(marked_processes(marker)) - kernel)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each case; the median is printed (default: 5)")
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound processes alongside, in the second round (default: 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kata-interrupt-") as tmp:
        folder = looping_copy(Path(tmp) / "kata")
        cases = {"grader.py --lesson 02": lambda: grader_run(folder, ["--lesson", "02"], subprocess.DEVNULL),
                 "grader.py watch --lesson 02": lambda: grader_run(folder, ["watch", "--lesson", "02"],
                                                                   subprocess.PIPE),
                 "notebook.check('02') in a kernel": lambda: kernel_run(folder)}
        for busy in (0, args.busy):
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
            try:
                for name, case in cases.items():
                    figures = [case() for _ in range(args.runs)]
                    seconds = [f[0] for f in figures]
                    print(f"{name}, {busy} busy processes alongside: SIGINT to exit median "
                          f"{statistics.median(seconds):.2f} s (lowest {min(seconds):.2f}, highest {max(seconds):.2f}; "
                          f"{args.runs} runs); ended with {sorted(set(str(f[1]) for f in figures))}; processes left "
                          f"{sum(f[2] for f in figures)}", flush=True)
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()


if __name__ == "__main__":
    main()
