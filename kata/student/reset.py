"""Reset a lesson: its files of exercises/ back to the generated stubs, the student's version kept in a backup.

    reset("03")     -> the backups made (nothing is written over without one)
"""

from ..course.backups import Backups
from ..course.exercises import holds_reference, pristine
from ..course.files import write_atomic
from ..course.manifest import lesson
from ..course.repository import REFERENCE, STATE, STUDENT, existing_folder, shown


def reset(lesson_id, folder=STUDENT, backup_root=STATE / "backup"):
    """Put the lesson's files of folder back to the generated stubs; returns the backups of what was replaced.

    A file that differs from its stub is first copied to backup_root/<timestamp>/<file>. Prints nothing.
    """
    item = lesson(lesson_id)
    folder = existing_folder(folder)
    if folder == REFERENCE.resolve() or holds_reference(folder, item.files):
        raise ValueError(f"refusing to reset {shown(folder)}: it holds the reference (solution regions) the stubs "
                         f"are generated from; reset works on exercises/ or on a folder laid out like it")
    if not (folder / "__init__.py").is_file():
        raise ValueError(f"{folder} has no __init__.py: expected a folder laid out like exercises/")
    if not item.files:
        raise ValueError(f"lesson {item.id} ({item.title}) has no files of its own to reset")
    generated = pristine()
    keep = Backups(backup_root)
    for name in item.files:
        target = folder / name
        try:
            # (a stub checked out with CRLF line ends, as Windows may, is still the stub: no backup of it)
            if target.is_file() and target.read_bytes().replace(b"\r\n", b"\n") != generated[name].encode():
                keep.save(target)
            write_atomic(target, generated[name])
        except OSError as error:
            kept = f"; copies of your files are in {shown(keep.folder)}/" if keep.saved else ""
            raise OSError(f"reset {item.id}: {shown(target)} could not be reset ({error.strerror or error}); it is "
                          f"as it was{kept}") from None
    return keep.saved
