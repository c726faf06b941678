"""Writing files and folders so that a reader sees the old version or the new one, never half of one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            # a file name that is not UTF-8 (held as surrogates) is written back as its own bytes
            fh.write(data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process's umask (os.umask can only be read by setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder in `parent`, with the permissions of a folder made by mkdir (mkdtemp makes it private)."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    tmp.chmod(0o777 & ~current_umask())
    return tmp


def atomic_json(path: Path, obj: Any) -> None:
    """`atomic_write` of `obj` as indented JSON."""
    atomic_write(path, json.dumps(obj, indent=2, default=str) + "\n")


def replace_dir(src: Path, dst: Path) -> None:
    """Move the finished folder `src` to `dst`, replacing what was there, never leaving `dst` half-written."""
    old = dst.with_name(dst.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    if old.exists():
        shutil.rmtree(old)


def move_files_into(src: Path, dst: Path) -> None:
    """Move every file of folder `src` into `dst` one atomic rename at a time, then remove `src`."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        target = dst / item.name
        if item.is_dir():
            replace_dir(item, target)
        else:
            os.replace(item, target)
    shutil.rmtree(src, ignore_errors=True)
