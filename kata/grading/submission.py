"""Find and open a submission: a folder laid out like exercises/, a folder holding one (a clone of the kata), or a
.zip of either, possibly a zip left unextracted inside a folder (as Gradescope stores an uploaded zip).

    sub = open_submission("alice.zip", work, name="alice")   # sub.folder to grade, sub.display for messages
"""

import os
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..course.exercises import pristine
from ..course.repository import NAMED, ROOT, kata_files  # NAMED: graded in place, under their own names

MAX_ZIP_BYTES = 20 * 2**20  # a submission is a few hundred kB; anything this big is a mistake or a zip bomb
MAX_ZIP_FILES = 2000
MAX_ZIP_ENTRIES = 20_000  # every entry, skipped ones included: read from the archive's end before anything else
MAX_FILE_BYTES = 1 << 20  # the largest reference file is about 10 kB
SKIPPED_DIRS = {"__MACOSX", "__pycache__", ".git", ".venv", "venv", ".ipynb_checkpoints", "node_modules"}
EXPECTED = "the files of exercises/ (__init__.py, attention.py, ...), a folder holding exercises/, or a .zip of either"


class SubmissionError(Exception):
    """The submission cannot be found or opened; the message says what was expected instead."""


@dataclass
class Submission:
    folder: Path  # the implementation folder to grade
    display: str  # how messages name that folder: "exercises", "alice/exercises"
    arg: str  # what --impl receives for it
    notes: list = field(default_factory=list)  # what the student should know, e.g. a file taken from exercises/


def _skipped(parts):
    """Whether a path (its parts, relative to the submission) lies in a folder never graded, or is hidden."""
    return any(part in SKIPPED_DIRS or part.startswith(".") for part in parts)


def extract(archive, target):
    """Unpack a zip into target and return target; refuses absolute paths, '..', links, more than MAX_ZIP_FILES
    files or MAX_ZIP_BYTES. What is never graded (.git, .venv, __MACOSX, ...) is left out and not counted."""
    if not zipfile.is_zipfile(archive):
        raise SubmissionError(f"{archive.name} is not a readable zip file; expected {EXPECTED}")
    entries = _entries_announced(archive)
    if entries is None or entries > MAX_ZIP_ENTRIES:  # reading a huge directory costs seconds and memory
        raise SubmissionError(f"{archive.name} holds {'more than 65,535' if entries is None else f'{entries:,}'} "
                              f"entries: at most {MAX_ZIP_ENTRIES:,} expected")
    try:
        with zipfile.ZipFile(archive) as opened:
            for info in opened.infolist():
                path = PurePosixPath(info.filename.replace("\\", "/"))
                if path.is_absolute() or ".." in path.parts or ":" in info.filename:
                    raise SubmissionError(f"{archive.name} holds {info.filename!r}, a path outside the archive; "
                                          f"expected {EXPECTED}")
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise SubmissionError(f"{archive.name} holds a symbolic link ({info.filename}): "
                                          f"expected plain files")
            members = [info for info in opened.infolist() if not _skipped(PurePosixPath(info.filename).parts)]
            if len(members) > MAX_ZIP_FILES:
                raise SubmissionError(f"{archive.name} holds {len(members)} files: at most {MAX_ZIP_FILES} expected")
            size = sum(info.file_size for info in members)
            if size > MAX_ZIP_BYTES:
                raise SubmissionError(f"{archive.name} unpacks to {size / 2**20:.0f} MB: at most "
                                      f"{MAX_ZIP_BYTES // 2**20} MB expected")
            opened.extractall(target, members)
    except (zipfile.BadZipFile, OSError) as error:
        raise SubmissionError(f"{archive.name} could not be opened as a zip: {error}") from error
    return target


def _entries_announced(archive):
    """How many entries a zip's end-of-central-directory record announces (None: a ZIP64 count, or no record),
    read from its last bytes only."""
    with open(archive, "rb") as stream:
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(max(0, size - (22 + 0xFFFF)))  # the record, and a comment of at most 65,535 bytes after it
        tail = stream.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    entries = struct.unpack("<H", tail[at + 10:at + 12])[0]
    return None if entries == 0xFFFF else entries


def _candidates(folder):
    """(folder, number of kata files) for every folder under folder (itself included) holding a kata file
    other than __init__.py."""
    wanted = set(kata_files())
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _skipped([d]))
        names = wanted & set(files)
        if names - {"__init__.py"}:
            found.append((Path(current), len(names)))
    return found


def locate(path, work_dir):
    """The folder of a submission that holds the implementation (unzipping into work_dir when needed).

    Prefers a folder named exercises/, then the folder with the most kata files, then the shallowest; two
    folders equal on all three are an error. Returns (folder, where): where is its path inside the submission,
    as a tuple of names. Raises SubmissionError when there is nothing to grade.
    """
    path, work_dir = Path(path), Path(work_dir)
    if not path.exists():
        raise SubmissionError(f"{path} does not exist (no such folder or zip); expected {EXPECTED}")
    if path.is_file():
        if path.suffix.lower() != ".zip" and not zipfile.is_zipfile(path):
            raise SubmissionError(f"{path.name} is neither a folder nor a .zip; expected {EXPECTED}")
        path = extract(path, work_dir / "unzipped")
    found = _candidates(path)
    zips = [p for p in sorted(path.rglob("*.zip")) if not _skipped(p.relative_to(path).parts)]
    if not found and len(zips) == 1:  # an upload that is one zip nobody extracted
        path = extract(zips[0], work_dir / "unzipped-inner")
        found = _candidates(path)
    if not found:
        python = sorted(p.name for p in path.rglob("*.py"))[:5]
        seen = f"Python files {python}, none named like the kata's" if python else "no Python file"
        raise SubmissionError(f"nothing to grade in the submission ({seen}); expected {EXPECTED}")

    def rank(entry):
        folder, count = entry
        return folder.name != "exercises", -count, len(folder.relative_to(path).parts)

    best = [folder for folder, count in found if rank((folder, count)) == min(map(rank, found))]
    if len(best) > 1:
        names = ", ".join(str(folder.relative_to(path)) for folder in best)
        raise SubmissionError(f"the submission holds several implementations ({names}): expected exactly one "
                              f"folder laid out like exercises/")
    return best[0], best[0].relative_to(path).parts


def _copy_strictly(source, target):
    """Copy only the kata's files (kata_files()) that are plain files of at most MAX_FILE_BYTES; return notes
    naming everything else, which is ignored: links, other modules, conftest.py, pytest.ini, sitecustomize.py."""
    target.mkdir(parents=True)
    wanted, notes, ignored = set(kata_files()), [], []
    for entry in sorted(source.iterdir()):
        if entry.name in SKIPPED_DIRS or entry.name.startswith(".") or entry.name.endswith(".pyc"):
            continue
        if entry.name not in wanted:
            ignored.append(entry.name + ("/" if entry.is_dir() and not entry.is_symlink() else ""))
            continue
        if entry.is_symlink() or not entry.is_file():
            notes.append(f"{entry.name} is {'a symbolic link' if entry.is_symlink() else 'not a plain file'}: "
                         f"ignored, as if it were missing")
            continue
        if entry.stat().st_size > MAX_FILE_BYTES:
            notes.append(f"{entry.name} is {entry.stat().st_size:,} bytes, more than {MAX_FILE_BYTES:,}: ignored, "
                         f"as if it were missing")
            continue
        shutil.copyfile(entry, target / entry.name)
    if ignored:
        notes.append(f"only the kata's files are graded; ignored: {', '.join(ignored[:12])}"
                     + (f" and {len(ignored) - 12} more" if len(ignored) > 12 else ""))
    return notes


def prepare(path, work_dir, name=None, strict=False):
    """Copy a submission's implementation into work_dir/implementation, ready for grading.

    Returns (folder, notes, shown): notes are for the student (a missing __init__.py is taken from exercises/,
    as students uploading loose files often leave it out; other missing files are grade()'s to report);
    shown names the folder in messages: name (default: the submission's own name), then the path inside it.
    strict: copy only the kata's own files, plain and of a sane size, and report what else was there.
    """
    work_dir = Path(work_dir)
    source, where = locate(path, work_dir)
    target = work_dir / "implementation"
    shutil.rmtree(target, ignore_errors=True)
    notes = []
    if strict:
        notes += _copy_strictly(source, target)
    else:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(*SKIPPED_DIRS, "*.pyc", ".*"))
    if not (target / "__init__.py").exists():
        (target / "__init__.py").write_text(pristine()["__init__.py"], encoding="utf-8")
        notes.append("__init__.py was not in the submission: the one of exercises/ was used.")
    return target, notes, "/".join([name or Path(path).name, *where])


def open_submission(impl, work_dir, name=None, strict=False):
    """Resolve impl ("solutions", "exercises", a folder or a .zip) into a Submission; work_dir is a scratch folder.

    name is how messages call the submission (default: impl as given); "solutions" and "exercises" are graded in
    place unless strict, anything else is copied by prepare() (strict: only the kata's files).
    """
    path = Path(str(impl)).expanduser()
    for known in NAMED:
        if str(impl) == known or (path.exists() and path.resolve() == (ROOT / known).resolve()):
            if not strict:
                return Submission(ROOT / known, name or known, known)
            path = ROOT / known
    folder, notes, shown = prepare(path, work_dir, name or str(impl).rstrip("/") or str(impl), strict)
    return Submission(folder, shown, str(folder), notes)
