"""Grade a folder of submissions: one JSON per student and one CSV with a row per student, a column per lesson.

    batch("submissions/", "grades/")   # or: python grader.py batch submissions/ --out grades/

Each entry of the folder is one student, named after the entry (without .zip): a folder laid out like
exercises/, a folder holding exercises/ (a clone of the kata), or a .zip of either. A broken submission
becomes a row with zero points and the reason; it never stops the batch.
"""

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ..course import children
from ..course.files import write_atomic, write_json
from ..course.manifest import lesson_ids as lesson_ids_of
from ..course.manifest import lessons
from ..course.repository import has_reference
from ..sandbox import NotContained, unsupported
from .grade import grade
from .interrupted import halt
from .results import GradeResult
from .settings import variant_seed
from .submission import SKIPPED_DIRS, SubmissionError

DEFAULT_WORKERS = 2  # submissions graded at the same time (each grades two lessons at a time)


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


@dataclass(frozen=True)
class Graded:
    """One student's line of a batch: their result, or why they could not be graded."""
    student: str
    submission: str
    result: GradeResult = None  # None when error says why there is none
    error: str = ""
    max_score: float = 0.0  # of the lessons graded
    isolated: bool = False
    seconds: float = 0.0  # the grading's, or until it failed

    @property
    def score(self):
        return self.result.score if self.result else 0.0

    def to_json(self):
        """The student's JSON file: the grader's JSON with student, submission and error; or zero and why."""
        if self.result is not None:
            return {**self.result.to_json(), "student": self.student, "submission": self.submission, "error": ""}
        return {"student": self.student, "submission": self.submission, "error": self.error, "notes": [],
                "score": 0.0, "max_score": self.max_score, "isolated": self.isolated,
                "execution_time": self.seconds, "lessons": []}


def grade_one(name, entry, lesson_ids, isolated, timeout=None, allow_unconfined=False, variant=None):
    """Grade one student's entry; never raises: a problem becomes the Graded's error."""
    max_score = float(sum(item.points for item in lessons() if item.id in lesson_ids))
    start = time.perf_counter()
    try:
        # messages name alice/exercises/loss.py, not a temporary folder
        result = grade(str(entry), lesson_ids=lesson_ids, isolated=isolated, timeout=timeout, name=entry.name,
                       allow_unconfined=allow_unconfined, variant=variant)
        return Graded(name, str(entry), result, "", max_score, isolated, result.execution_time)
    except Exception as error:  # any failure of one submission must leave the others graded
        message = str(error) if isinstance(error, SubmissionError) else f"{type(error).__name__}: {error}"
        return Graded(name, str(entry), None, message, max_score, isolated, round(time.perf_counter() - start, 2))


def row(graded, lesson_ids, variant=None):
    """One CSV row: student, a score per lesson, total, max_score, (with a variant: variant, the variant's total,
    and variant_max_score,) status ('ok' or the error)."""
    scores = {entry.id: entry.score for entry in graded.result.lessons} if graded.result else {}
    line = {"student": graded.student}
    line.update({i: round(float(scores.get(i, 0.0)), 4) for i in lesson_ids})
    line.update(total=round(float(graded.score), 4), max_score=round(float(graded.max_score), 4))
    if variant is not None:
        varied = graded.result.variant if graded.result else None
        line.update(variant=round(float(varied.score), 4) if varied else 0.0,
                    variant_max_score=round(float(graded.max_score), 4))
    line.update(status=" ".join(graded.error.split()) or "ok")
    return line


def batch(folder, out_dir, isolated=False, workers=None, lesson_ids=None, timeout=None, allow_unconfined=False,
          variant=None):
    """Grade every submission in folder; write out_dir/<student>.json and out_dir/grades.csv. variant: a SEED, as
    grade() takes it (each student's JSON gets "variant", the CSV the columns variant and variant_max_score).

    Returns the CSV rows (dicts), sorted by student.
    """
    ids = lesson_ids_of(lesson_ids)
    out_dir = Path(out_dir)
    entries = students(folder, skip=[out_dir])  # out_dir may sit inside folder
    if not entries:
        raise ValueError(f"{folder} holds no submission; expected one sub-folder or .zip per student")
    if variant is not None:  # refused once, not once per student
        variant = variant_seed(variant)
        if not has_reference():
            raise ValueError(f"--variant {variant}: a variant's expected values are computed from the reference "
                             f"(solutions/), which is not here")
    if unsupported():  # every submission is graded sandboxed
        raise NotContained(f"batch grading runs every submission sandboxed, but {unsupported()}: grade them on "
                           f"Linux (WSL on Windows)")
    workers = DEFAULT_WORKERS if workers is None else max(1, int(workers))
    rows, start = [], time.perf_counter()
    # threads are enough: each grade() runs the tests in subprocesses of its own
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(grade_one, name, entry, ids, isolated, timeout, allow_unconfined, variant): name
                   for name, entry in entries.items()}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                graded = future.result()
                write_json(out_dir / f"{graded.student}.json", graded.to_json())
                rows.append(row(graded, ids, variant))
                outcome = f"ERROR {rows[-1]['status']}" if graded.error else \
                    f"{graded.result.score:g}/{graded.result.max_score:g} points" + (
                        f", variant {variant}: {graded.result.variant.score:g}" if graded.result.variant else "")
                print(f"[{done}/{len(entries)}] {graded.student}: {outcome} ({graded.seconds:.1f} s)", flush=True)
        except KeyboardInterrupt:  # Ctrl-C: every test process killed, no submission started after it
            if halt(futures):
                children.resume()
            raise children.Interrupted(
                f"Interrupted: batch grading stopped with {len(rows)} of {len(entries)} submissions graded (their "
                f"JSON files are in {out_dir}); grades.csv was not written") from None
    rows.sort(key=lambda line: line["student"])
    text = io.StringIO()
    varied = ["variant", "variant_max_score"] if variant is not None else []
    writer = csv.DictWriter(text, fieldnames=["student", *ids, "total", "max_score", *varied, "status"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out_dir / "grades.csv", text.getvalue())
    seconds = time.perf_counter() - start
    print(f"graded {len(rows)} submissions in {seconds:.1f} s: {out_dir / 'grades.csv'}", flush=True)
    return rows
