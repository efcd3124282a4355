"""Backups of a student's files: whatever would overwrite a file that holds work copies it here first.

    keep = Backups(STATE / "backup")
    keep.save(path)      # copied to .kata/backup/<timestamp>/<name> (the folder is made on the first save)
    keep.saved           # the copies made
"""

import datetime
import shutil
from pathlib import Path


class Backups:
    """One timestamped folder under root for the files one command replaces."""

    def __init__(self, root):
        self.root = Path(root)
        self.folder = None
        self.saved = []

    def save(self, path):
        """Copy path (if it exists) into this command's backup folder; returns the copy or None."""
        path = Path(path)
        if not path.is_file():
            return None
        if self.folder is None:
            self.folder = new_backup_dir(self.root)
        copy = self.folder / path.name
        try:
            shutil.copy2(path, copy)
        except OSError:  # (a full disk): no partial copy passes for a backup; the original is not touched
            copy.unlink(missing_ok=True)
            raise
        self.saved.append(copy)
        return copy


def new_backup_dir(root):
    """A fresh root/<timestamp> folder (with a -2, -3... suffix when two commands share a second)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ValueError(f"cannot create a backup folder in {root}: too many backups named {stamp}")
