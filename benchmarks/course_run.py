"""A course run, end to end and timed: the instructor's guide (INSTRUCTORS.md) step by step on a class of six
submissions made here (correct, partial, broken, copied-and-renamed, replaying the public expected values, hostile).

    python -m benchmarks.course_run [--work DIR] [--seed 7] [--student]

Each step is one command of the guide, run as an instructor runs it (a child process), and timed. --student also
clones the edition as a student would and runs its README's two commands (make grade, make test), which builds the
clone's own .venv (minutes). Prints each step's time, the scores with and without the variant and the similarity
ranking; leaves everything in --work (default: a new temporary folder) to look at.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from kata.course.exercises import BEGIN, END
from kata.course.repository import REFERENCE, ROOT
from meta.disguise import disguise
from meta.helpers import write_stubs
from meta.replay import replay_cheater

INDEPENDENT = ROOT / "meta" / "independent"  # a second, independent implementation of lessons 02, 03 and 06

# the hostile submission: the correct one, with code that reads what it must not, leaves a process behind, floods
# the output and kills every process it can see once the loss's backward runs
HOSTILE_AT_IMPORT = '''
import os as _os, signal as _signal
for _path in ("../solutions/loss.py", "../../solutions/loss.py", "/autograder/source/solutions/loss.py",
              "../tests/recorded/test_lesson06_loss.json"):
    try:
        print("FOUND", _path, open(_path).read()[:200])
    except OSError:
        pass
if _os.fork() == 0:  # a daemon that outlives its parent
    _os.setsid()
    if _os.fork() == 0:
        import time as _time
        while True:
            _time.sleep(1)
    _os._exit(0)
print("x" * 10_000_000)
'''
HOSTILE_BACKWARD = '''

_original_backward = CrossEntropyLoss.backward


def _backward(self, *args, **kwargs):
    import os, signal
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
    return _original_backward(self, *args, **kwargs)


CrossEntropyLoss.backward = _backward
'''


def strip_markers(source):
    return "".join(line for line in source.splitlines(keepends=True) if line.strip() not in (BEGIN, END))


def finished(folder):
    """A student's finished copy: the reference without its markers, lessons 02, 03 and 06 written independently."""
    folder.mkdir(parents=True)
    for path in REFERENCE.glob("*.py"):
        (folder / path.name).write_text(strip_markers(path.read_text(encoding="utf-8")), encoding="utf-8")
    for path in INDEPENDENT.glob("*.py"):
        shutil.copyfile(path, folder / path.name)
    return folder


def make_class(folder, log):
    """The six submissions, each as a student hands it in (a folder or a zip)."""
    folder.mkdir(parents=True)
    finished(folder / "ada_correct")
    write_stubs(folder / "ben_partial")  # lessons 02 and 03 done, the rest not started
    for name in ("attention.py", "layers.py"):
        shutil.copyfile(INDEPENDENT / name, folder / "ben_partial" / name)
    broken = finished(folder / "cy_broken")
    loss = broken / "loss.py"
    loss.write_text(loss.read_text(encoding="utf-8")[: len(loss.read_text(encoding="utf-8")) // 2], encoding="utf-8")
    (broken / "data.py").write_text("import numpyy as np\n" + (broken / "data.py").read_text(encoding="utf-8"),
                                    encoding="utf-8")
    disguise(REFERENCE, folder / "dee_renamed")
    started = time.perf_counter()
    replay_cheater(folder / "eve_replay", sorted({p.name[11:13] for p in (ROOT / "tests").glob("test_lesson*.py")}))
    log("the replaying submission's table, recorded from the public tests", time.perf_counter() - started)
    hostile = finished(folder / "fay_hostile_src")
    (hostile / "attention.py").write_text(HOSTILE_AT_IMPORT + (hostile / "attention.py").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    (hostile / "loss.py").write_text((hostile / "loss.py").read_text(encoding="utf-8") + HOSTILE_BACKWARD,
                                     encoding="utf-8")
    with zipfile.ZipFile(folder / "fay_hostile.zip", "w") as archive:
        for path in sorted(hostile.glob("*.py")):
            archive.write(path, path.name)
    shutil.rmtree(hostile)
    return folder


def run(command, cwd, log, what, env=None):
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))
    seconds = time.perf_counter() - started
    log(f"{what} (exit {done.returncode})", seconds)
    return done


def processes():
    """{pid: command line} of every process this user can see (Linux's /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass
    return found


def grades(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="the folder to work in (default: a new temporary folder)")
    parser.add_argument("--seed", type=int, default=7, help="the hidden variant's seed (default 7)")
    parser.add_argument("--student", action="store_true", help="also clone the edition and run its two commands "
                                                               "as a student (default: no)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="kata-course-"))
    python, times, before = sys.executable, [], processes()

    def log(what, seconds):
        times.append((what, seconds))
        print(f"{seconds:8.1f} s  {what}", flush=True)

    edition = work / "edition"
    done = run([python, "grader.py", "release", "--out", str(edition)], ROOT, log, "release: grader.py release")
    print(done.stdout[-1500:], done.stderr[-1500:])
    if args.student:
        for command in (["git", "init", "-q"], ["git", "add", "-A"],
                        ["git", "-c", "user.name=Instructor", "-c", "user.email=i@example.org", "commit", "-qm",
                         "The course"]):
            subprocess.run(command, cwd=edition, check=True)
        subprocess.run(["git", "clone", "-q", str(edition), str(work / "student")], check=True)
        env = {"PYTHON": python}
        done = run(["make", "grade"], work / "student", log, "a student: make grade (builds .venv)", env)
        print(done.stdout[-2500:])
        done = run(["make", "test"], work / "student", log, "a student: make test", env)
        print(done.stdout[-600:])
    submissions = make_class(work / "submissions", log)
    print("the class:", ", ".join(sorted(p.name for p in submissions.iterdir())))
    done = run([python, "grader.py", "batch", str(submissions), "--out", str(work / "grades")], ROOT, log,
               "grade: grader.py batch (public tests)")
    print(done.stdout[-2500:], done.stderr[-800:])
    done = run([python, "grader.py", "batch", str(submissions), "--out", str(work / "grades-variant"), "--variant",
                str(args.seed)], ROOT, log, f"grade: grader.py batch --variant {args.seed}")
    print(done.stdout[-2500:], done.stderr[-800:])
    for name in ("grades", "grades-variant"):
        print(f"{name}/grades.csv:")
        for row in grades(work / name / "grades.csv"):
            print("  " + ", ".join(f"{key} {value}" for key, value in row.items() if key not in
                                   [f"{k:02d}" for k in range(11)]))
    done = run([python, "grader.py", "package-gradescope", "--out", str(work / "autograder.zip"), "--variant",
                str(args.seed), "--visibility", "after_due_date"], ROOT, log, "Gradescope: package-gradescope")
    print(done.stdout[-400:], done.stderr[-400:])
    done = run([python, "grader.py", "similarity", str(submissions), "--out", str(work / "similarity.html")], ROOT,
               log, "similarity: grader.py similarity")
    print(done.stdout[-1500:], done.stderr[-800:])
    left = {pid: command for pid, command in processes().items()
            if pid not in before and pid != os.getpid() and "python" in command}
    print(f"processes started during the run and still running: {left or 'none'}")
    print(json.dumps([{"step": what, "seconds": round(seconds, 1)} for what, seconds in times], indent=1))
    print(f"everything is in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
