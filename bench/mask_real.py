"""What masking does on real footage: leave-one-subject-out accuracy of the scratch preset on ../shared/data/real-dev.

The data: fall-vs-adl (GMDCSA24, 23 clips, 4 subjects, handheld and fixed
cameras in ordinary rooms; see its README). Each fold trains on three subjects
(a grouped split of them, whole subjects, for validation) and is scored on
every clip of the fourth; the figure is the accuracy over all 23 clips, each
counted once, with the Wilson 95% interval of that count. Every setting sees
the same folds, seed and epochs; masks are computed once per clip into the
bench's own cache, and the clips' decoded frames are cached across settings.

Settings: no masks (the reference), ``--mask motion`` and ``--mask person``
(and any given with ``--masks``; ``motion-still`` is motion masks with camera
compensation off, the method as it was before compensation). The line of a
setting prints its accuracy, its points against the reference, its interval,
the clips whose mask is empty (left out of training, still scored), and what
`snapaction mask`'s flags say about the clips.

Precision is fp32 (``precision="no"``) so that the figures are the same on
CPUs with and without native bf16.

Run: ``python bench/mask_real.py [--epochs 12] [--masks motion person]``. At the
default 12 epochs it ran 26 minutes on a 2-core CPU shared with other jobs
(load average about 10; 669 s without masks, decoding every clip once
included, 579 s motion, 327 s person): 12 trainings of 13-19 clips. The
trainings are most of it, so ``--epochs 6`` about halves it. Measured:
no masks 0.565 (13/23), motion 0.652 (15/23), person 0.696 (16/23).
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-dev" / "fall-vs-adl"


def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion `correct`/`total` (95% at z=1.96)."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def clips(root: Path) -> list[tuple[Path, str, str]]:
    """(path, label, subject) of every clip under `root`/<label>/."""
    return [(p, p.parent.name, p.name.split("_")[0]) for p in sorted(root.glob("*/*.mp4"))]


def write_manifest(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "group"])
        for clip, label, subject in rows:
            writer.writerow([str(clip), label, subject])
    return path


def fold(train_csv: Path, test_rows, out: Path, cache: Path, mask: str | None, epochs: int) -> tuple[int, list[str]]:
    """(clips of `test_rows` classified right, clips left out of training for an empty mask)."""
    from snapaction.data.layout import Sample
    from snapaction.evaluate import evaluate
    from snapaction.predict import Predictor
    from snapaction.training import TrainConfig, train

    result = train(TrainConfig(data=str(train_csv), out=str(out), backbone="scratch", epochs=epochs, cache_dir=str(cache),
                               mask=mask, seed=0, patience=0, precision="no"))
    samples = [Sample(p, label, subject) for p, label, subject in test_rows]
    evaluation = evaluate(Predictor.load(result.run_dir), samples, batch_clips=8)
    right = int((evaluation.probs.argmax(1) == evaluation.labels).sum())  # a clip that failed to decode counts as wrong
    return right, [p for p, reason in result.skipped if "mask is empty" in reason]


def flags_of(method: str, paths, cache: Path) -> str:
    """What `snapaction mask`'s report flags over these clips, counted per flag."""
    from collections import Counter

    from snapaction.mask.clips import mask_clips
    from snapaction.mask.masker import masker_for
    from snapaction.mask.settings import Masking

    report = mask_clips(paths, masker_for(Masking(method), cache), 16, progress=False)
    counted = Counter(flag for stats in report.stats.values() for flag in stats.flags)
    return ", ".join(f"{n} {flag}" for flag, n in sorted(counted.items())) or "none flagged"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--masks", nargs="+", default=["motion", "person"],
                        help="settings to compare with no masks: motion, person, sam2, motion-still")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    import torch

    from snapaction.mask import motion

    rows = clips(args.data)
    subjects = sorted({s for _, _, s in rows})
    work = Path(tempfile.mkdtemp(prefix="mask-real-"))
    cache = work / "cache"
    print(f"{len(rows)} clips, {len(subjects)} subjects ({', '.join(f'{s}: {sum(r[2] == s for r in rows)}' for s in subjects)}), "
          f"classes {sorted({r[1] for r in rows})}; scratch preset, {args.epochs} epochs per fold (no early stopping), "
          f"seed 0, torch threads {torch.get_num_threads()}; leave one subject out, every clip scored once")
    manifests = {s: write_manifest(work / f"train-without-{s}.csv", [r for r in rows if r[2] != s]) for s in subjects}
    reference = None
    for setting in [None] + args.masks:
        started = time.perf_counter()
        method = "motion" if setting == "motion-still" else setting
        motion.COMPENSATE = setting != "motion-still"
        setting_cache = cache if setting != "motion-still" else work / "cache-still"
        right, empty = 0, []
        for s in subjects:
            got, left_out = fold(manifests[s], [r for r in rows if r[2] == s], work / f"{setting or 'none'}-{s}",
                                 setting_cache, method, args.epochs)
            right += got
            empty += left_out
        accuracy = right / len(rows)
        low, high = wilson(right, len(rows))
        against = "" if reference is None else f", {100 * (accuracy - reference):+.1f} points against no masks"
        extra = ""
        if method is not None:
            extra = f"; {len(empty)} clips left out of training for an empty mask; flags: {flags_of(method, [r[0] for r in rows], setting_cache)}"
        print(f"{setting or 'no masks':12s} {accuracy:.3f} ({right}/{len(rows)}, 95% interval {low:.2f}-{high:.2f}){against}"
              f"{extra}; {time.perf_counter() - started:.0f} s", flush=True)
        if reference is None:
            reference = accuracy
    motion.COMPENSATE = True


if __name__ == "__main__":
    main()
