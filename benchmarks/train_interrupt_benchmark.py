"""Time from Ctrl-C (SIGINT) to the exit of train.py, once an epoch has finished; print the figures.

    python -m benchmarks.train_interrupt_benchmark [--runs 5] [--size medium] [--busy 2] [--plots]

Each run trains the reference, waits for the first finished epoch, waits a little more (a different delay each
run, so the signal falls at different points of a step or of an evaluation), sends SIGINT and measures until the
process has exited; it also checks the exit status (130) and that the checkpoint and metrics were written.
--busy N keeps N busy loops running alongside, as a loaded machine would.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kata.course.repository import ROOT

BUSY = "while True: pass"


def one_run(size, delay, plots, folder):
    outputs = ["--checkpoint", str(folder / "model.npz"), "--metrics-json", str(folder / "metrics.json")]
    if plots:
        outputs += ["--plots", str(folder / "plots")]
    proc = subprocess.Popen([sys.executable, "train.py", "--impl", "solutions", "--size", size, "--epochs", "100",
                             "--no-progress", *outputs], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    for line in proc.stdout:
        if line.startswith("epoch 1/"):
            break
    else:
        raise SystemExit(f"train.py ended before its first epoch: {proc.stderr.read()}")
    time.sleep(delay)
    start = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    seconds = time.perf_counter() - start
    if proc.returncode != 130 or json.loads((folder / "metrics.json").read_text())["interrupted"] is None:
        raise SystemExit(f"exit status {proc.returncode}, expected 130: {err}")
    return seconds, err.strip().splitlines()[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="interruptions measured (default %(default)s)")
    parser.add_argument("--size", choices=("small", "medium", "large"), default="medium",
                        help="train.py --size (default %(default)s)")
    parser.add_argument("--busy", type=int, default=0, help="busy loops running alongside (default %(default)s)")
    parser.add_argument("--plots", action="store_true", help="with --plots: the pictures are drawn after Ctrl-C")
    args = parser.parse_args(argv)
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy)]
    try:
        figures = []
        for run in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="kata-interrupt-") as tmp:
                seconds, line = one_run(args.size, 0.1 + 0.37 * run, args.plots, Path(tmp))
            figures.append(seconds)
            print(f"run {run + 1}: {seconds:.2f} s  ({line[:110]}...)", flush=True)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    print(f"--size {args.size}{' --plots' if args.plots else ''}, {args.busy} busy loops: SIGINT to exit median "
          f"{statistics.median(figures):.2f} s, lowest {min(figures):.2f} s, highest {max(figures):.2f} s "
          f"({len(figures)} runs; cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
