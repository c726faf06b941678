"""Writing files and folders so that a reader sees the old version or the new one, never half of one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator


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
    """Move the finished folder `src` to `dst`, replacing what was there, never leaving `dst` half-written.

    Two renames (the old folder aside as ``NAME.old``, the new one in), then the old one removed; Ctrl-C
    waits until all is done, and an error between the renames puts the old folder back. Only a kill can fall between them:
    ``snapaction.run.recover_partial_writes`` (or the next `replace_dir`) tidies that up.
    """
    src, dst = Path(src), Path(dst)
    old = dst.with_name(dst.name + ".old")
    with ctrl_c_deferred():
        if old.exists():
            shutil.rmtree(old)
        if dst.exists():
            os.replace(dst, old)
        try:
            os.replace(src, dst)
        except BaseException:
            if old.exists() and not dst.exists():
                os.replace(old, dst)
            raise
        if old.exists():
            shutil.rmtree(old)


@contextlib.contextmanager
def building(dst: Path) -> Iterator[Path]:
    """A new empty folder beside `dst` to build the next version of `dst` in, swapped in whole when the block ends.

    While the block runs, `dst` is untouched; if it raises (Ctrl-C included), the new folder is removed and
    `dst` stays exactly as it was. Folders that earlier builds killed outright left beside `dst` are removed.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{dst.name}-build-"
    for leftover in dst.parent.glob(prefix + "*"):
        pid = leftover.name[len(prefix):].split("-", 1)[0]
        if leftover.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
    tmp = temp_dir(dst.parent, f"{prefix}{os.getpid()}-")
    try:
        yield tmp
        replace_dir(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block is done, then raise it: for a few renames that must not be split.

    Only the main thread receives signals in Python; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list = []
    try:
        before = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if before is None else before)
        if caught:  # delivered now, to whatever handled it before (Python's: KeyboardInterrupt)
            signal.raise_signal(signal.SIGINT)


def _alive(pid: int) -> bool:
    """True when a process `pid` runs on this machine (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
