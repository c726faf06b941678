"""``--mask auto``: whether hiding the background helps, decided on the user's own validation clips.

Masking helps where the background gives the class away in training and not
later (bench/mask_gain.py: 0.000 -> 0.950), and costs accuracy where the mask
loses what tells the classes apart (bench/mask_real.py, README). So ``auto``
trains the run once without masks and once with each method that runs here
with no download (`candidates`), same clips, seed and epochs, and keeps the
one with the best validation accuracy (`choose`); a mask must beat no mask
outright to be kept (a tie keeps the clips as they are: nothing is hidden, and
prediction has no masks to compute). Validation clips a mask left out (empty
mask) count as wrong, so every candidate is scored on the same clips.

The comparison costs one training per candidate; with ``--max-minutes`` the
budget is shared between them. The run folder holds the kept run; the others
stay, whole, under its ``mask-trials/``. The choice and the figures are
recorded in the run's ``snapaction.json`` (``masking.auto``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

TRIALS = "mask-trials"
"""The folder, inside the run, holding the candidates' own runs."""


def candidates() -> list[str | None]:
    """What ``--mask auto`` compares: no mask (None), person masks when MediaPipe is installed, motion masks."""
    methods: list[str | None] = [None]
    if importlib.util.find_spec("mediapipe") is not None:
        methods.append("person")
    methods.append("motion")
    return methods


def name(method: str | None) -> str:
    return method or "none"


@dataclass
class Trial:
    """One candidate's training: its validation accuracy over every validation clip, or why it could not train."""

    method: str | None
    accuracy: float | None = None
    """Best validation accuracy, clips left out for an empty mask counted as wrong."""
    scored: int = 0
    """Validation clips the candidate was scored on (the others had an empty mask)."""
    total: int = 0
    epochs: int = 0
    seconds: float = 0.0
    failed: str | None = None


def choose(trials: list[Trial]) -> tuple[Trial, str]:
    """(the trial to keep, why, in one sentence): the best validation accuracy; a tie goes to the earlier in the
    list, and no mask comes first."""
    ran = [t for t in trials if t.accuracy is not None]
    if not ran:
        raise ValueError("no candidate trained")
    kept = ran[0]
    for trial in ran[1:]:
        if trial.accuracy > kept.accuracy + 1e-9:
            kept = trial
    plain = next((t for t in ran if t.method is None), None)
    if kept.method is None:
        best_mask = max((t for t in ran if t.method is not None), key=lambda t: t.accuracy, default=None)
        if best_mask is None:
            return kept, "no mask could be trained"
        if abs(best_mask.accuracy - kept.accuracy) <= 1e-9:
            return kept, (f"{best_mask.method} masks only tie it ({best_mask.accuracy:.3f}); a tie keeps the clips as they are "
                          "(nothing hidden, no masks to compute at prediction)")
        return kept, f"no mask scores {kept.accuracy:.3f} on validation, better than {best_mask.method} masks ({best_mask.accuracy:.3f})"
    against = f"against {plain.accuracy:.3f} without masks" if plain is not None else "(no run without masks could be compared)"
    return kept, f"{kept.method} masks score {kept.accuracy:.3f} on validation, {against}"


def describe(trial: Trial) -> str:
    if trial.failed:
        return f"{name(trial.method)}: could not train ({trial.failed})"
    left = f", {trial.total - trial.scored} of {trial.total} validation clips left out for an empty mask (counted wrong)" if trial.scored < trial.total else ""
    return f"{'no masks' if trial.method is None else trial.method + ' masks'} {trial.accuracy:.3f} ({trial.epochs} epochs, {trial.seconds:.0f} s{left})"


def record(trials: list[Trial], kept: Trial, why: str) -> dict:
    """What ``snapaction.json`` keeps of the comparison, under ``masking.auto``."""
    return {"kept": name(kept.method), "why": why,
            "validation_accuracy": {name(t.method): t.accuracy for t in trials if t.accuracy is not None},
            "failed": {name(t.method): t.failed for t in trials if t.failed},
            "validation_clips": max((t.total for t in trials), default=0), "trials": TRIALS}
