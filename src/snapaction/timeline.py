"""Long videos: per-window probabilities merged into labelled segments, written as CSV, JSON and a PNG.

`Predictor.timeline(path, stride_s, window_s)` gives one `Window` per
position of a window slid over the video. `merge_windows` turns them into
segments: each window speaks for the stretch of time closest to its centre
(from halfway to the previous window's centre to halfway to the next one's),
so segments never overlap and a boundary is placed within half a stride of
where the content changes. Consecutive windows whose most probable class is
the same, with a probability of at least `threshold`, form one segment;
windows below the threshold belong to no segment.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class Segment:
    """A stretch of video given one label."""

    start: float
    """Seconds from the start of the video."""
    end: float
    label: str
    confidence: float
    """Mean probability of `label` over the windows merged into this segment."""
    windows: int


def window_starts(duration: float, window_s: float, stride_s: float | None = None) -> np.ndarray:
    """Start times (s) of windows of `window_s` seconds every `stride_s` (default: half a window) over a video;
    when the stride does not land on the end, one more window flush with it."""
    stride_s = stride_s or window_s / 2
    if stride_s <= 0 or window_s <= 0:
        raise ValueError(f"window and stride must be positive, got {window_s} and {stride_s}")
    last = max(duration - window_s, 0.0)
    starts = np.arange(0.0, last + 1e-9, stride_s)
    if last - starts[-1] > 1e-6:
        starts = np.append(starts, last)
    return starts


def window_frames(info, start: float, window_s: float) -> tuple[int, int]:
    """(first frame, frame count) of the window starting at `start` seconds in a clip (`VideoInfo`)."""
    first = int(round(start * info.fps))
    return first, max(1, min(info.num_frames - first, int(round(window_s * info.fps))))


def window_spans(windows, duration: float | None = None) -> list[tuple[float, float]]:
    """The stretch of time each window speaks for: from the midpoints between its centre and its neighbours'.

    The first window's starts at its start, the last one's ends at `duration`
    (the end of the video) when given, else at the window's end.
    """
    centres = [(w.start + w.end) / 2 for w in windows]
    spans = []
    for i, w in enumerate(windows):
        lo = w.start if i == 0 else (centres[i - 1] + centres[i]) / 2
        hi = max(w.end, duration or 0.0) if i == len(windows) - 1 else (centres[i] + centres[i + 1]) / 2
        spans.append((lo, max(lo, hi)))
    return spans


def merge_windows(windows, threshold: float = 0.5, min_seconds: float = 0.0, duration: float | None = None) -> list[Segment]:
    """Segments (start, end, label, mean confidence) from consecutive windows that agree.

    A window joins a segment when its top class reaches `threshold`;
    segments shorter than `min_seconds` are dropped. `duration` (seconds of
    the whole video) lets the last segment reach the end of the video.
    """
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold is a probability in [0, 1], got {threshold}")
    segments: list[Segment] = []
    current: list = []  # (span, window) of the segment being built

    def close():
        if current:
            label = current[0][1].label
            conf = sum(w.probabilities[label] for _, w in current) / len(current)
            seg = Segment(round(current[0][0][0], 3), round(current[-1][0][1], 3), label, round(conf, 4), len(current))
            if seg.end - seg.start >= min_seconds:
                segments.append(seg)
            current.clear()

    for span, w in zip(window_spans(windows, duration), windows):
        top = w.probabilities[w.label]
        if top < threshold:
            close()
            continue
        if current and current[-1][1].label != w.label:
            close()
        current.append((span, w))
    close()
    return segments


def write_timeline(folder: str | Path, windows, segments: list[Segment], classes: list[str], title: str = "",
                   threshold: float | None = None) -> dict[str, Path]:
    """Write ``windows.csv`` (one row per window, a column per class), ``timeline.json``
    (windows and segments), ``segments.csv`` and ``timeline.png`` into `folder`; returns their paths."""
    import json

    from .files import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in ("windows.csv", "segments.csv", "timeline.json", "timeline.png")}

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["start", "end", "label", *classes])
    for w in windows:
        writer.writerow([f"{w.start:.3f}", f"{w.end:.3f}", w.label, *(f"{w.probabilities[c]:.5f}" for c in classes)])
    atomic_write(paths["windows.csv"], buf.getvalue())

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["start", "end", "label", "confidence"])
    for s in segments:
        writer.writerow([f"{s.start:.3f}", f"{s.end:.3f}", s.label, f"{s.confidence:.4f}"])
    atomic_write(paths["segments.csv"], buf.getvalue())

    atomic_write(paths["timeline.json"], json.dumps({
        "classes": classes,
        "windows": [{"start": w.start, "end": w.end, "label": w.label, "probabilities": w.probabilities} for w in windows],
        "segments": [asdict(s) for s in segments],
    }, indent=1) + "\n")
    plot_timeline(windows, segments, classes, paths["timeline.png"], title, threshold)
    return paths


def plot_timeline(windows, segments: list[Segment], classes: list[str], path: str | Path, title: str = "",
                  threshold: float | None = None) -> None:
    """Each class's probability over time (at window centres) above a bar of the merged segments."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .files import atomic_write

    colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    colour = {c: colours(i % colours.N) for i, c in enumerate(classes)}
    shown = _shown_classes(windows, segments, classes)
    end = max((w.end for w in windows), default=1.0)
    fig, (ax, bar) = plt.subplots(2, 1, figsize=(8, 3.2), sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    centres = [(w.start + w.end) / 2 for w in windows]
    for c in shown:
        ax.plot(centres, [w.probabilities[c] for w in windows], color=colour[c], label=c, lw=1.5)
    if threshold is not None:
        ax.axhline(threshold, ls=":", color="grey", lw=1)
    ax.set_ylim(0, 1.02), ax.set_ylabel("probability")
    if shown:
        ax.legend(loc="upper right", fontsize=7, ncol=min(4, len(shown)))
    if title:
        ax.set_title(title, fontsize=10)
    for s in segments:
        bar.axvspan(s.start, s.end, color=colour[s.label], alpha=0.85)
        if s.end - s.start > end / 25:
            bar.text((s.start + s.end) / 2, 0.5, s.label, ha="center", va="center", fontsize=7)
    bar.set_yticks([]), bar.set_xlim(0, end), bar.set_xlabel("seconds")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write(Path(path), buf.getvalue())


def _shown_classes(windows, segments, classes: list[str], most: int = 8) -> list[str]:
    """The classes worth a line: those of any segment, then the highest-peaking others, at most `most`."""
    named = {s.label for s in segments}
    peak = {c: max((w.probabilities[c] for w in windows), default=0.0) for c in classes}
    ranked = sorted(classes, key=lambda c: (c not in named, -peak[c]))
    return [c for c in ranked[:most] if c in named or peak[c] > 0.2] or ranked[:1]


def clip_timeline(predictor, path: str | Path, folder: str | Path, stride_s: float | None = None, window_s: float | None = None,
                  threshold: float = 0.5, min_seconds: float = 0.0, title: str = "") -> tuple[list, list[Segment], float]:
    """Slide the model over one video, merge its windows into segments and write them under `folder`.

    Returns (windows, segments, duration in seconds). Raises `ClipError` for an unreadable video.
    """
    from .video import probe

    duration = probe(path).duration
    windows = predictor.timeline(path, stride_s=stride_s, window_s=window_s)
    segments = merge_windows(windows, threshold, min_seconds, duration)
    write_timeline(folder, windows, segments, predictor.classes, title=f"{title} ({duration:.1f} s)", threshold=threshold)
    return windows, segments, duration
