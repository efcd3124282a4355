"""Grade a folder of submissions: one JSON per student and one CSV with a row per student, a column per lesson.

    batch("submissions/", "grades/")   # or: python grader.py batch submissions/ --out grades/

Each entry of the folder is one student, named after the entry (without .zip): a folder laid out like
exercises/, a folder holding exercises/ (a clone of the kata), or a .zip of either. A broken submission
becomes a row with zero points and the reason; it never stops the batch.
"""

import csv
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .grading import SubmissionError, grade, lesson_ids_of
from .manifest import ROOT, lessons

DEFAULT_WORKERS = 2
MAX_UNZIPPED_BYTES = 50_000_000  # a submission is a few hundred kB; anything this big is a mistake or a zip bomb
SKIPPED_DIRS = {"__MACOSX", "__pycache__", ".git", ".venv", "venv", ".ipynb_checkpoints", "node_modules"}
EXPECTED = "the files of exercises/ (__init__.py, attention.py, ...), a folder holding exercises/, or a .zip of either"


def write_atomic(path, text):
    """Write text to path through a temporary file in the same folder, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def kata_files():
    """The file names an implementation folder holds: those of exercises/ and every lesson's files."""
    names = {path.name for path in (ROOT / "exercises").glob("*.py")}
    return sorted(names | {"__init__.py"} | {name for item in lessons() for name in item.files})


def _unzip(archive, target):
    """Extract a zip into target, refusing what is not a zip or would unpack to something huge."""
    if not zipfile.is_zipfile(archive):
        raise SubmissionError(f"{archive.name} is not a readable zip file; expected {EXPECTED}")
    with zipfile.ZipFile(archive) as opened:
        size = sum(info.file_size for info in opened.infolist())
        if size > MAX_UNZIPPED_BYTES:
            raise SubmissionError(f"{archive.name} unpacks to {size / 1e6:.0f} MB (limit "
                                  f"{MAX_UNZIPPED_BYTES / 1e6:.0f} MB); expected {EXPECTED}")
        opened.extractall(target)  # extractall drops absolute paths and '..' parts
    return target


def _candidates(folder):
    """Every folder under folder (itself included) holding at least one kata file, with how many it holds."""
    wanted = set(kata_files())
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        count = len(wanted & set(files))
        if count:
            found.append((Path(current), count))
    return found


def locate(path, work_dir):
    """The folder of a submission that holds the implementation (unzipping into work_dir when needed).

    Prefers a folder named exercises/, then the folder with the most kata files, then the shallowest.
    Returns (folder, where): where is its path inside the submission, as a tuple of names.
    Raises SubmissionError when there is nothing to grade.
    """
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path} does not exist; expected {EXPECTED}")
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise SubmissionError(f"{path.name} is neither a folder nor a .zip; expected {EXPECTED}")
        path = _unzip(path, Path(work_dir) / "unzipped")
    found = _candidates(path)
    zips = sorted(p for p in path.rglob("*.zip") if not SKIPPED_DIRS & set(p.parts))
    if not found and len(zips) == 1:  # an upload that is one zip nobody extracted
        path = _unzip(zips[0], Path(work_dir) / "unzipped-inner")
        found = _candidates(path)
    if not found:
        python = sorted(p.name for p in path.rglob("*.py"))[:5]
        seen = f"Python files {python}, none named like the kata's" if python else "no Python file"
        raise SubmissionError(f"nothing to grade in the submission ({seen}); expected {EXPECTED}")

    def rank(entry):
        folder, count = entry
        return (folder.name != "exercises", -count, len(folder.relative_to(path).parts), str(folder))

    folder = min(found, key=rank)[0]
    return folder, folder.relative_to(path).parts


def prepare(path, work_dir, name=None):
    """Copy a submission's implementation into work_dir/implementation, ready for grading.

    Returns (folder, notes, shown): notes are for the student (a missing __init__.py is taken from exercises/,
    as students uploading loose files often leave it out; other missing files are grade()'s to report);
    shown names the folder in messages: name (default: the submission's own name), then the path inside it.
    """
    work_dir = Path(work_dir)
    source, where = locate(path, work_dir)
    target = work_dir / "implementation"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*SKIPPED_DIRS, "*.pyc", ".*"))
    notes = []
    if not (target / "__init__.py").exists():
        shutil.copy2(ROOT / "exercises" / "__init__.py", target / "__init__.py")
        notes.append("__init__.py was not in the submission: the one of exercises/ was used.")
    return target, notes, "/".join([name or Path(path).name, *where])


def rename(data, folder, shown):
    """data (nested dicts, lists, strings) with every spelling of the path folder replaced by shown."""
    spellings = sorted({str(folder), str(Path(folder).resolve())}, key=len, reverse=True)
    if isinstance(data, str):
        for spelling in spellings:
            data = data.replace(spelling, shown)
        return data
    if isinstance(data, dict):
        return {key: rename(value, folder, shown) for key, value in data.items()}
    if isinstance(data, list):
        return [rename(value, folder, shown) for value in data]
    return data


def students(folder, skip=()):
    """{student name: entry} for every entry of folder, skipping hidden entries and the paths in skip."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; expected a folder with one sub-folder or .zip per student")
    skip = {Path(p).resolve() for p in skip}
    result = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in SKIPPED_DIRS or entry.resolve() in skip:
            continue
        name = entry.stem if entry.is_file() and entry.suffix.lower() == ".zip" else entry.name
        result[name if name not in result else entry.name] = entry  # alice/ and alice.zip both kept
    return result


def grade_one(name, entry, lesson_ids, isolated, timeout=None):
    """Grade one student's entry; never raises: a problem becomes the result's "error"."""
    max_score = float(sum(item.points for item in lessons() if item.id in lesson_ids))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kata-batch-") as work:
        try:
            folder, notes, shown = prepare(entry, work, name=entry.name)
            result = grade(str(folder), lesson_ids=lesson_ids, isolated=isolated, timeout=timeout)
            result = rename(result, folder, shown)  # messages name alice/exercises/loss.py, not a temporary folder
            result.update(student=name, submission=str(entry), notes=notes, error="")
        except Exception as error:  # any failure of one submission must leave the others graded
            message = str(error) if isinstance(error, SubmissionError) else f"{type(error).__name__}: {error}"
            result = {"student": name, "submission": str(entry), "error": message, "notes": [],
                      "score": 0.0, "max_score": max_score, "isolated": isolated,
                      "execution_time": round(time.perf_counter() - start, 2), "lessons": []}
    return result


def row(result, lesson_ids):
    """One CSV row: student, a score per lesson, total, max_score, status ('ok' or the error)."""
    scores = {lesson["id"]: lesson["score"] for lesson in result["lessons"]}
    line = {"student": result["student"]}
    line.update({i: round(float(scores.get(i, 0.0)), 4) for i in lesson_ids})
    line.update(total=round(float(result["score"]), 4), max_score=round(float(result["max_score"]), 4),
                status=" ".join(result["error"].split()) or "ok")
    return line


def batch(folder, out_dir, isolated=False, workers=None, lesson_ids=None, timeout=None):
    """Grade every submission in folder; write out_dir/<student>.json and out_dir/grades.csv.

    Returns the CSV rows (dicts), sorted by student.
    """
    ids = lesson_ids_of(lesson_ids)
    out_dir = Path(out_dir)
    entries = students(folder, skip=[out_dir])  # out_dir may sit inside folder
    if not entries:
        raise ValueError(f"{folder} holds no submission; expected one sub-folder or .zip per student")
    workers = DEFAULT_WORKERS if workers is None else max(1, int(workers))
    rows, start = [], time.perf_counter()
    # threads are enough: each grade() runs the tests in subprocesses of its own
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(grade_one, name, entry, ids, isolated, timeout): name
                   for name, entry in entries.items()}
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            write_atomic(out_dir / f"{result['student']}.json", json.dumps(result, indent=2) + "\n")
            rows.append(row(result, ids))
            outcome = f"ERROR {rows[-1]['status']}" if result["error"] else \
                f"{result['score']:g}/{result['max_score']:g} points"
            print(f"[{done}/{len(entries)}] {result['student']}: {outcome} "
                  f"({result['execution_time']:.1f} s)", flush=True)
    rows.sort(key=lambda line: line["student"])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["student", *ids, "total", "max_score", "status"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out_dir / "grades.csv", text.getvalue())
    seconds = time.perf_counter() - start
    print(f"graded {len(rows)} submissions in {seconds:.1f} s: {out_dir / 'grades.csv'}", flush=True)
    return rows
