"""Finding clips: which dataset layout a folder or manifest uses, and the samples in it.

Layouts, told apart automatically:

- ``videos``: ``ROOT/<class>/*.mp4`` (also ``.avi .mov .mkv .webm .m4v``);
- ``frames``: ``ROOT/<class>/<video_id>/*.jpg`` (or ``.png``), frames in natural order;
- ``unlabeled``: ``ROOT/<id>/*.jpg`` frame folders (or ``ROOT/*.mp4``) with no classes;
- ``manifest``: a CSV file ``path,label[,group]``, paths relative to the manifest.

`walk` instead finds every clip at any depth, for unlabeled footage however it is filed.

Every sample has a group, the source video it was cut from, so that a split
never puts two cuts of one recording on both sides: the manifest's group
column, else the UCF101-style ``..._gNN`` part of names like
``v_Archery_g03_c02.avi``, else the clip itself. Anything found that is not a
clip is listed in `ClipSet.skipped` with the reason; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, frame_files, natural_key

log = logging.getLogger(__name__)

LAYOUTS = ("videos", "frames", "manifest", "unlabeled")

_UCF_GROUP = re.compile(r"^(.+_g\d+)_c\d+$", re.IGNORECASE)
_NOT_REGULAR = "not a regular file or folder (a pipe, socket or device); copy the clip into a file"
_WHERE = "put clips in ROOT/<class>/ folders (video files or frame folders) or pass a CSV manifest"


@dataclass(frozen=True)
class Sample:
    """One clip: a video file or a frame folder, its class (None when unlabeled) and its source group."""

    path: Path
    label: str | None
    group: str


@dataclass
class ClipSet:
    """What `scan` found under one root."""

    root: Path
    layout: str
    """One of `LAYOUTS`."""
    samples: list[Sample]
    classes: list[str]
    """Sorted class names; a class's index in this list is its id."""
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """Entries that are not clips, each with the reason it was left out."""
    notes: list[tuple[Path, str]] = field(default_factory=list)
    """Clips used on a judgement the user should hear of (a file with no extension read by its content)."""


def scan(root: str | Path) -> ClipSet:
    """Find every clip under `root`, a dataset folder or a ``.csv`` manifest.

    Raises `DataError` when `root` is missing, empty, or holds no clip at all.
    """
    root = check_root(root)
    return _scan_manifest(root) if root.is_file() else _scan_folder(root)


def check_root(root: str | Path, one_clip: bool = False) -> Path:
    """`root` as a Path when it can be a dataset (a folder or a .csv manifest, or with `one_clip` any file, which
    `walk` reads as one clip); `DataError` in one sentence when not.

    Cheap: commands call it before importing anything heavy, so a wrong path is said at once.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root} does not exist; {_WHERE}.")
    if root.is_file() and root.suffix.lower() != ".csv" and not one_clip:
        raise DataError(f"{root} is a file but not a .csv manifest; pass a dataset folder or a manifest with rows path,label[,group].")
    return root


def walk(root: str | Path) -> ClipSet:
    """Every clip under `root` at any depth, in natural order: video files and frame folders, with no classes.

    For footage with no labels (pretraining), kept however it is filed. `root`
    may also be one video file or a ``.csv`` manifest. Links are followed once:
    a folder reached a second time (a symbolic link loop, or a second link to
    it) is listed in ``skipped`` with the folder it repeats, as are broken
    links, pipes, sockets, devices, unreadable folders and every file that is
    not a clip. Raises `DataError` when `root` is missing or holds no clip.
    """
    root = check_root(root, one_clip=True)
    if root.is_file() and root.suffix.lower() == ".csv":
        clips = scan(root)
        return ClipSet(root, "unlabeled", [Sample(s.path, None, s.group) for s in clips.samples], [], clips.skipped, clips.notes)
    samples: list[Sample] = []
    skipped: list[tuple[Path, str]] = []
    notes: list[tuple[Path, str]] = []
    if root.is_dir():
        _walk_folder(root, root, {os.path.realpath(root): root}, samples, skipped, notes)
    elif _is_video_file(root, skipped, notes):
        samples.append(Sample(root, None, root.name))
    if not samples:
        raise DataError(f"{root} holds no clips ({_summary(skipped)}); put video files ({', '.join(VIDEO_EXTENSIONS)}) "
                        "or frame folders anywhere under it.")
    return ClipSet(root, "unlabeled", samples, [], skipped, notes)


def _walk_folder(root: Path, folder: Path, seen: dict[str, Path], samples: list[Sample],
                 skipped: list[tuple[Path, str]], notes: list[tuple[Path, str]]) -> None:
    try:
        entries = _children(folder, skipped)
    except OSError as err:
        skipped.append((folder, f"folder cannot be read ({err.strerror or err})"))
        return
    for entry in entries:
        relative = entry.relative_to(root).as_posix()
        if entry.is_symlink() and not entry.exists():
            skipped.append((entry, "a broken symbolic link"))
        elif entry.is_dir():
            real = os.path.realpath(entry)  # unlike Path.resolve, never raises on a symbolic link loop
            if real in seen:
                skipped.append((entry, f"a link to the folder {seen[real]}, already searched"))
                continue
            seen[real] = entry
            if _is_frame_folder(entry):
                samples.append(Sample(entry, None, group_of(entry, relative)))
            else:
                _walk_folder(root, entry, seen, samples, skipped, notes)
        elif not entry.is_file():
            skipped.append((entry, _NOT_REGULAR))
        elif _is_video_file(entry, skipped, notes):
            samples.append(Sample(entry, None, group_of(entry, relative)))


def group_of(path: Path, relative: str) -> str:
    """Source group of a clip with no explicit group: UCF101-style ``name_gNN`` or the clip itself."""
    match = _UCF_GROUP.match(path.stem if path.suffix.lower() in VIDEO_EXTENSIONS else path.name)
    return match.group(1) if match else relative


# --- folders -----------------------------------------------------------------


def _scan_folder(root: Path) -> ClipSet:
    skipped: list[tuple[Path, str]] = []
    notes: list[tuple[Path, str]] = []
    entries = _children(root, skipped)
    if not entries:
        what = "is empty" if not skipped else "holds only hidden files"
        raise DataError(f"the folder {root} {what}; {_WHERE}.")
    dirs = [e for e in entries if e.is_dir()]
    files = [e for e in entries if not e.is_dir()]
    frame_dirs = [d for d in dirs if _is_frame_folder(d)]
    class_dirs = [d for d in dirs if d not in frame_dirs]
    if not dirs and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in files):
        raise DataError(f"{root} holds image files directly, so it looks like the frames of one clip; point at a folder of ROOT/<class>/<video_id>/ frame folders instead.")

    samples: list[Sample] = []
    if class_dirs:
        for d in frame_dirs:
            skipped.append((d, "holds image frames directly, beside class folders; frames of a clip belong in ROOT/<class>/<video_id>/"))
        for f in files:
            skipped.append((f, "not inside a class folder"))
        for d in class_dirs:
            found = _scan_class(root, d, skipped, notes)
            if not found:
                skipped.append((d, "class folder with no clips; the class is left out"))
            samples += found
        layout = "frames" if all(s.path.is_dir() for s in samples) else "videos"
    else:
        for d in frame_dirs:
            samples.append(Sample(d, None, group_of(d, d.name)))
        for f in files:
            if _is_video_file(f, skipped, notes):
                samples.append(Sample(f, None, group_of(f, f.name)))
        layout = "unlabeled"
    if not samples:
        raise DataError(f"{root} holds no clips ({_summary(skipped)}); {_WHERE}.")
    classes = sorted({s.label for s in samples if s.label is not None})
    return ClipSet(root, layout, samples, classes, skipped, notes)


def _scan_class(root: Path, folder: Path, skipped: list[tuple[Path, str]], notes: list[tuple[Path, str]]) -> list[Sample]:
    samples = []
    for entry in _children(folder, skipped):
        relative = entry.relative_to(root).as_posix()
        if entry.is_dir():
            if frame_files(entry):
                samples.append(Sample(entry, folder.name, group_of(entry, relative)))
            else:
                skipped.append((entry, f"folder without image frames ({', '.join(IMAGE_EXTENSIONS)}); nested folders are not searched"))
        elif _is_video_file(entry, skipped, notes):
            samples.append(Sample(entry, folder.name, group_of(entry, relative)))
    return samples


def _is_video_file(path: Path, skipped: list[tuple[Path, str]], notes: list[tuple[Path, str]]) -> bool:
    """A video by its extension; a regular file with no extension by its content (said in `notes`); else into `skipped`."""
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return True
    if not path.suffix and path.is_file():  # downloads are often saved without one ("videoplayback")
        from ..errors import ClipError
        from ..video import probe

        try:
            info = probe(path)
        except ClipError as err:
            skipped.append((path, f"has no extension, and its content is not a usable video: {err.reason}"))
            return False
        notes.append((path, f"has no extension; its content is a video ({info.width}x{info.height}, {info.num_frames} frames), so it is used"))
        return True
    skipped.append((path, _not_a_clip(path)))
    return False


def _is_frame_folder(folder: Path) -> bool:
    """Images directly inside, and no clips (videos or frame folders) beside them."""
    if not frame_files(folder):
        return False
    for entry in folder.iterdir():
        if entry.suffix.lower() in VIDEO_EXTENSIONS or (entry.is_dir() and frame_files(entry)):
            return False
    return True


def _children(folder: Path, skipped: list[tuple[Path, str]]) -> list[Path]:
    """Entries of `folder` in natural order; hidden ones go to `skipped`."""
    out = []
    for entry in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if entry.name.startswith("."):
            skipped.append((entry, "hidden"))
        else:
            out.append(entry)
    return out


def _not_a_clip(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "a single image, not a clip; put the frames of one clip in their own folder"
    kind = f"extension {suffix!r}" if suffix else "no extension"
    return f"not a video file ({kind}; expected one of {', '.join(VIDEO_EXTENSIONS)})"


def _summary(skipped: list[tuple[Path, str]]) -> str:
    if not skipped:
        return "nothing found"
    path, reason = skipped[0]
    more = f" and {len(skipped) - 1} more entries were skipped" if len(skipped) > 1 else ""
    return f"{path.name}: {reason}{more}"


# --- manifests ---------------------------------------------------------------

_COLUMNS = ("path", "label", "group")


def _scan_manifest(manifest: Path) -> ClipSet:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(f), 1)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read manifest {manifest} ({err}); save it as a UTF-8 CSV with rows path,label[,group].") from None
    rows = [(n, row) for n, row in rows if any(row) and not row[0].startswith("#")]
    if not rows:
        raise DataError(f"manifest {manifest} has no rows; add one row path,label[,group] per clip.")
    columns = _header(rows[0][1])
    positional = columns is None
    if columns is None:
        width = max(len(row) for _, row in rows)
        columns = {name: i for i, name in enumerate(_COLUMNS[: min(width, 3)])}
    else:
        rows = rows[1:]
    labeled = "label" in columns

    base = manifest.parent
    samples: list[Sample] = []
    skipped: list[tuple[Path, str]] = []
    notes: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for n, row in rows:
        cell = {name: row[i] if i < len(row) else "" for name, i in columns.items()}
        if not cell["path"]:
            skipped.append((manifest, f"line {n} has no path"))
            continue
        if positional and len(row) > 3:
            skipped.append((manifest, f"line {n} has {len(row)} columns; expected path,label[,group] (quote paths that hold commas)"))
            continue
        path = base / cell["path"]
        where = f"line {n} of {manifest.name}"
        refused: list[tuple[Path, str]] = []
        if labeled and not cell["label"]:
            skipped.append((path, f"{where} has no label"))
        elif path in seen:
            skipped.append((path, f"{where} lists this clip a second time"))
        elif not path.exists():
            skipped.append((path, f"listed on {where} but does not exist"))
        elif path.is_dir() and not frame_files(path):
            skipped.append((path, f"listed on {where} but is a folder without image frames"))
        elif not path.is_dir() and not path.is_file():
            skipped.append((path, f"listed on {where} but {_NOT_REGULAR}"))
        elif path.is_file() and not _is_video_file(path, refused, notes):  # the rule a folder's files follow
            skipped.append((path, f"listed on {where} but {refused[0][1]}"))
        else:
            seen.add(path)
            group = cell.get("group") or group_of(path, Path(cell["path"]).as_posix())
            samples.append(Sample(path, cell["label"] if labeled else None, group))
    if not samples:
        raise DataError(f"manifest {manifest} lists no usable clips ({_summary(skipped)}); paths are read relative to the manifest's folder.")
    classes = sorted({s.label for s in samples if s.label is not None})
    return ClipSet(manifest, "manifest", samples, classes, skipped, notes)


def _header(first: list[str]) -> dict[str, int] | None:
    """Column positions from a header row naming ``path`` (other columns are ignored), or None when the first row is data."""
    names = [c.lower() for c in first]
    if "path" not in names:
        return None
    return {name: names.index(name) for name in _COLUMNS if name in names}


def collect_inputs(paths: list[str]) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """(id, clip path) for every clip the paths name, sorted by id, and (path, reason) for what is not a clip.

    A path is a video file, a frame folder, a folder that `scan` reads (clips,
    class folders, or frame folders ROOT/<id>/*.jpg), or a CSV manifest. The id is the
    file stem or folder name; ids that would repeat get their path relative to
    the folder they were found in instead. A pattern the shell left alone (quoted,
    or a shell that does not expand them) is expanded here.
    """
    found: list[tuple[Path, Path]] = []  # (clip, the input it came from)
    skipped: list[tuple[str, str]] = []
    for arg in _expand_patterns(paths, skipped):
        path = Path(arg)
        if not path.exists():
            skipped.append((arg, "no such file or folder"))
        elif not path.is_file() and not path.is_dir():
            skipped.append((arg, _NOT_REGULAR))
        elif path.is_file() and path.suffix.lower() != ".csv":
            notes: list[tuple[Path, str]] = []
            refused: list[tuple[Path, str]] = []
            if _is_video_file(path, refused, notes):
                found.append((path, path.parent))
                for _, note in notes:
                    log.warning("%s %s", arg, note)
            else:
                skipped += [(arg, reason) for _, reason in refused]
        elif path.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir()) and not any(p.is_dir() for p in path.iterdir()):
            found.append((path, path.parent))  # the frames of one clip
        else:
            try:
                clips = scan(path)  # a folder of clips, of class folders or of frame folders; or a CSV manifest
            except DataError as err:
                skipped.append((arg, str(err)))
                continue
            found += [(s.path, path if path.is_dir() else path.parent) for s in clips.samples]
            skipped += [(str(p), r) for p, r in clips.skipped if r != "hidden"]
            for p, note in clips.notes:
                log.warning("%s %s", p, note)
    seen: set[Path] = set()
    unique = []
    for clip, base in found:
        real = Path(os.path.realpath(clip))  # unlike Path.resolve, never raises on a symbolic link loop
        if real not in seen:
            seen.add(real)
            unique.append((clip, base))
    ids = [clip.stem if clip.is_file() else clip.name for clip, _ in unique]
    repeated = {i for i in ids if ids.count(i) > 1}
    for k, (clip, base) in enumerate(unique):
        if ids[k] in repeated:
            try:
                ids[k] = _id_path(clip).relative_to(base).as_posix()
            except ValueError:
                ids[k] = _id_path(clip).as_posix()
    still = {i for i in ids if ids.count(i) > 1}  # same name under different inputs (a/clip.mp4, b/clip.mp4)
    if still:
        clashing = [k for k, i in enumerate(ids) if i in still]
        common = Path(os.path.commonpath([str(unique[k][0].resolve().parent) for k in clashing]))
        for k in clashing:
            ids[k] = _id_path(unique[k][0].resolve()).relative_to(common).as_posix()
    for k, i in enumerate(ids):  # the last resort keeps every id unique: a number
        n = ids[:k].count(i)
        if n:
            ids[k] = f"{i}~{n + 1}"
    renamed = [i for i, (clip, _) in zip(ids, unique) if i != (clip.stem if clip.is_file() else clip.name)]
    if renamed:
        shown = ", ".join(renamed[:4]) + (", ..." if len(renamed) > 4 else "")
        log.warning("%d clip(s) share a name with another, so their ids are their paths: %s", len(renamed), shown)
    rows = sorted(zip(ids, (clip for clip, _ in unique)), key=lambda r: natural_key(r[0]))
    return rows, skipped


def _expand_patterns(paths: list[str], skipped: list[tuple[str, str]]) -> list[str]:
    """`paths` with each glob pattern that names no file itself (``new/*.mp4``) replaced by its matches, in natural order."""
    out = []
    for arg in paths:
        if os.path.lexists(arg) or not any(c in arg for c in "*?["):
            out.append(arg)
            continue
        matches = sorted(glob.glob(arg), key=natural_key)
        if not matches:
            skipped.append((arg, "no file or folder matches this pattern"))
        out += matches
    return out


def _id_path(clip: Path) -> Path:
    """A clip's path as its id would show it: without the video extension."""
    return clip.with_suffix("") if clip.is_file() else clip
