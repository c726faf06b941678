"""A studio project folder: class folders of clips, runs, and a trash that can be undone.

    PROJECT/data/<class>/*.webm|mp4|...   ordinary files: `snapaction train PROJECT/data` reads them too
    PROJECT/runs/<name>/                  run folders, exactly as `snapaction train` writes them
    PROJECT/trash/<id>/<class>[/<clip>]   what was deleted, by deletion; restoring moves it back
    PROJECT/.incoming/                    uploads being received; never read as clips

A clip lands in its class folder by one rename of a complete, checked file,
so a crash or a closed tab leaves either the whole clip or nothing there.
Nothing of a request becomes a path without passing `check_name` or being
found in a folder listing first.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..data.check import CheckSettings, usable
from ..data.layout import Sample
from ..errors import ClipError, SnapActionError
from ..files import current_umask
from ..video import VIDEO_EXTENSIONS

NAME = re.compile(r"\w[\w\- ]{0,62}[\w\-]|\w", re.UNICODE)
"""Class and run names: letters, digits, '_', '-' and inner spaces, at most 64 characters."""
POSTER_SIZE = 192
"""Short side of a clip's poster in pixels: thumbnails are 96 CSS pixels high, twice that for dense screens."""
POSTERS_KEPT = 512
"""Posters kept in memory (about 10 kB each); older ones are made again when asked for."""
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


class ProjectError(SnapActionError):
    """A request on the project that cannot be done: an HTTP status and one sentence."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_name(name: str, what: str = "class") -> str:
    """`name` stripped, or `ProjectError` 400 saying which characters a name may have."""
    name = (name or "").strip()
    if not NAME.fullmatch(name):
        raise ProjectError(400, f"{what} name {name!r} cannot be used: use 1-64 letters, digits, '_', '-' or spaces "
                                "(no '/', '.', or other punctuation)")
    return name


@dataclass
class ClipEntry:
    """One clip of a class as the page shows it."""

    name: str
    size: int
    problem: str | None
    """Why the clip cannot be trained on, or None when it can."""


class Project:
    """The folders of one studio project; every method is safe to call from several threads."""

    def __init__(self, root: str | Path, check: CheckSettings | None = None):
        self.root = Path(root)
        self.data = self.root / "data"
        self.runs = self.root / "runs"
        self.trash = self.root / "trash"
        self.incoming = self.root / ".incoming"
        for folder in (self.data, self.runs, self.trash, self.incoming):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise SnapActionError(f"cannot use {self.root} as a studio project: {folder} cannot be created "
                                      f"({err.strerror or err}); pass a folder you can write to") from None
        for leftover in self.incoming.iterdir():  # partial uploads of a server that stopped mid-request
            _remove(leftover)
        self.check = check or CheckSettings()
        self._lock = threading.RLock()
        self._probed: dict[tuple, str | None] = {}
        """(path, size, mtime) -> why the clip cannot be used (None: it can); a clip is probed once."""
        self._posters: dict[tuple, bytes] = {}
        """(path, size, mtime) -> the clip's poster JPEG, oldest first."""

    # --- classes -------------------------------------------------------------

    def classes(self) -> list[str]:
        """Class names (the folders under data/), sorted as training sorts them."""
        return sorted(p.name for p in self.data.iterdir() if p.is_dir() and not p.name.startswith("."))

    def class_dir(self, name: str) -> Path:
        """The folder of an existing class; `ProjectError` 404 when there is none."""
        if name not in self.classes():
            raise ProjectError(404, f"there is no class {name!r}; the project has {self.classes() or 'no classes yet'}")
        return self.data / name

    def add_class(self, name: str) -> str:
        name = check_name(name)
        with self._lock:
            if (self.data / name).exists():
                raise ProjectError(409, f"a class {name!r} already exists; choose another name")
            (self.data / name).mkdir()
        return name

    def rename_class(self, old: str, new: str) -> str:
        new = check_name(new)
        with self._lock:
            folder = self.class_dir(old)
            if (self.data / new).exists():
                raise ProjectError(409, f"a class {new!r} already exists; choose another name")
            os.rename(folder, self.data / new)
        return new

    def delete_class(self, name: str) -> str:
        """Move the class folder, clips and all, into the trash; returns the trash id that restores it."""
        with self._lock:
            return self._to_trash(self.class_dir(name), name)

    # --- clips ---------------------------------------------------------------

    def clips(self, name: str) -> list[ClipEntry]:
        """The clips of a class, oldest first, each with the reason it cannot be used (probed once per file)."""
        folder = self.class_dir(name)
        files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS),
                       key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [ClipEntry(p.name, p.stat().st_size, self._problem(p, name)) for p in files]

    def others(self, name: str) -> list[str]:
        """Entries of a class folder that are not video files (training reads frame folders; the page does not show them)."""
        return sorted(p.name for p in self.class_dir(name).iterdir()
                      if not p.name.startswith(".") and not (p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS))

    def clip_path(self, name: str, clip: str) -> Path:
        """The path of an existing clip, found in the class folder's listing; `ProjectError` 404 otherwise."""
        folder = self.class_dir(name)
        if clip not in {p.name for p in folder.iterdir() if p.is_file()}:
            raise ProjectError(404, f"class {name!r} has no clip {clip!r}")
        return folder / clip

    def add_clip(self, name: str, received: Path, filename: str | None, fallback: str | None = None) -> str:
        """Move a complete, checked file into the class folder; returns the clip's name.

        The name is `filename` made safe (`safe_stem`: letters, digits, '_' and '-'), else `fallback`, with the
        received file's suffix, and ``-2``, ``-3``... before the suffix when a clip of the class has it already.
        `received` must be in `incoming` (same file system, so the move is one atomic rename).
        """
        folder = self.class_dir(name)
        with open(received, "rb") as fh:  # the bytes are on disk before the clip's name appears
            os.fsync(fh.fileno())
        os.chmod(received, 0o666 & ~current_umask())  # received as a private temporary file; a clip is an ordinary one
        stem = safe_stem(filename) or safe_stem(fallback) or time.strftime("clip-%Y%m%d-%H%M%S")
        suffix = received.suffix.lower() if received.suffix.lower() in VIDEO_EXTENSIONS else ".webm"
        with self._lock:
            taken = {p.name.lower() for p in folder.iterdir()}  # lower case: one name on case-blind disks too
            target, n = folder / f"{stem}{suffix}", 2
            while target.name.lower() in taken:
                target, n = folder / f"{stem}-{n}{suffix}", n + 1
            os.replace(received, target)
        return target.name

    def poster(self, name: str, clip: str) -> bytes:
        """A JPEG of the clip's first frame (short side `POSTER_SIZE`, never upscaled), made once per file.

        The page shows it until the clip plays: a paused video that never played shows whatever frame the
        browser chose to decode, and headless Chromium decodes none for videos outside the window.
        `ProjectError` 422 when the clip cannot be decoded."""
        path = self.clip_path(name, clip)
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            found = self._posters.get(key)
        if found is None:
            try:
                found = poster_jpeg(path)
            except ClipError as err:
                raise ProjectError(422, f"clip {clip!r} of {name!r} has no picture to show: {err.reason}") from None
            with self._lock:
                self._posters[key] = found
                while len(self._posters) > POSTERS_KEPT:
                    self._posters.pop(next(iter(self._posters)))
        return found

    def delete_clip(self, name: str, clip: str) -> str:
        """Move one clip into the trash; returns the trash id that restores it."""
        with self._lock:
            return self._to_trash(self.clip_path(name, clip), name)

    # --- trash ---------------------------------------------------------------

    def restore(self, trash_id: str) -> list[str]:
        """Move what deletion `trash_id` put in the trash back where it was; returns the class names it restored.

        Nothing moves when anything would land on an existing clip (`ProjectError` 409)."""
        with self._lock:
            entry = self.trash / trash_id
            if not re.fullmatch(r"[0-9]{8}-[0-9]{6}-[0-9]+", trash_id) or not entry.is_dir():
                raise ProjectError(404, f"there is nothing in the trash under {trash_id!r}; it was restored already or never existed")
            moves = []
            for folder in entry.iterdir():
                target = self.data / folder.name
                if not target.exists():
                    moves.append((folder, target))
                    continue
                for item in folder.iterdir():
                    if (target / item.name).exists():
                        raise ProjectError(409, f"cannot restore {folder.name}/{item.name}: a clip of that name is there now; "
                                                "rename or delete it first")
                    moves.append((item, target / item.name))
            for src, dst in moves:
                os.replace(src, dst)
            shutil.rmtree(entry)
            return sorted({dst.relative_to(self.data).parts[0] for _, dst in moves})

    def _to_trash(self, path: Path, class_name: str) -> str:
        trash_id = time.strftime("%Y%m%d-%H%M%S-") + str(time.time_ns() % 10**9)
        place = self.trash / trash_id / class_name
        if path.parent == self.data:  # a whole class
            place.parent.mkdir(parents=True)
            os.replace(path, place)
        else:
            place.mkdir(parents=True)
            os.replace(path, place / path.name)
        return trash_id

    # --- checks --------------------------------------------------------------

    def _problem(self, path: Path, label: str) -> str | None:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._probed:
            _, bad = usable([Sample(path, label, path.name)], workers=1, min_frames=self.check.min_frames)
            self._probed[key] = bad[0][1] if bad else None
        return self._probed[key]

    def summary(self) -> dict:
        """Every class with its clips and its warnings (unusable clips, too few clips, imbalance), as the page shows them."""
        classes = []
        for name in self.classes():
            clips = self.clips(name)
            classes.append({"name": name, "clips": [vars(c) for c in clips], "others": self.others(name),
                            "usable": sum(c.problem is None for c in clips)})
        most = max((c["usable"] for c in classes), default=0)
        for c in classes:
            c["warnings"] = self._warnings(c, most)
        return {"root": str(self.root), "data": str(self.data), "classes": classes,
                "ready": sum(c["usable"] > 0 for c in classes) >= 2}

    def people(self, name: str, landmark_folder: str | Path) -> dict:
        """What the pose model saw in a class's usable clips, from the landmarks already cached (training a pose
        run caches them; nothing is extracted here, so the page never waits on MediaPipe).

        ``{"clips": usable clips, "looked_at": clips with cached landmarks, "person": those with a body or hands in
        enough frames to be sure, "body": with a body in any frame, "nobody": with neither in any frame}``.
        """
        from ..pose.features import thin_evidence
        from ..pose.landmarks import LandmarkCache
        from ..pose.settings import PoseSettings

        settings = PoseSettings()
        cache = LandmarkCache(landmark_folder, settings.frames, settings.decode_size, settings.hands)
        out = {"clips": 0, "looked_at": 0, "person": 0, "body": 0, "nobody": 0}
        for clip in self.clips(name):
            if clip.problem:
                continue
            out["clips"] += 1
            path = self.clip_path(name, clip.name)
            entry = cache.entry(path)
            if not entry.is_file():
                continue
            landmarks = cache._read(entry, path)
            if landmarks is None:
                continue
            seen = landmarks.seen()
            out["looked_at"] += 1
            out["person"] += not thin_evidence(seen, settings.min_person_frames)
            out["body"] += seen["body"] > 0
            out["nobody"] += seen["body"] == 0 and seen["hands"] == 0
        return out

    def _warnings(self, entry: dict, most: int) -> list[str]:
        n, settings = entry["usable"], self.check
        out = [f"{c['name']} cannot be used: {c['problem']}" for c in entry["clips"] if c["problem"]]
        if n < settings.min_clips:
            out.append(f"only {n} usable clip{'s' if n != 1 else ''}: record at least {settings.min_clips}; a few dozen work best")
        if n and most / n >= settings.imbalance:
            out.append(f"{most / n:.1f}x fewer clips than the largest class ({most}): record more, or the model will favour that class")
        if entry["others"]:
            out.append(f"not video files, so not shown here: {', '.join(entry['others'])}")
        return out


def poster_jpeg(path: Path) -> bytes:
    """The first frame of a clip as JPEG bytes, its short side scaled down to `POSTER_SIZE`. Raises `ClipError`."""
    import io

    from PIL import Image

    from ..video import probe, read_frames

    info = probe(path)
    size = POSTER_SIZE if min(info.width, info.height) > POSTER_SIZE else None
    frame = read_frames(path, [0], size=size, info=info)[0]  # (H, W, 3)
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def safe_stem(filename: str | None) -> str:
    """A client's file name without its folders and suffix, reduced to letters, digits, '_' and '-' (runs of anything
    else become one '_'), neither starting nor ending with '_' or '-', at most 60 characters; '' when nothing is left."""
    base = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    stem = re.sub(r"[^\w\-]+", "_", os.path.splitext(base)[0], flags=re.UNICODE).strip("_-")[:60].strip("_-")
    return f"{stem}_" if stem.upper() in WINDOWS_DEVICES else stem  # 'con.mp4' cannot be a file on Windows


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
