"""Background masking: foreground masks computed once per clip, cached, and used by training and prediction alike.

Three methods (`settings.METHODS`), one module each: `motion` (background
subtraction, no weights), `person` (MediaPipe's selfie segmentation, shipped
in the mediapipe wheel), `sam2` (SAM 2 through transformers, prompted
automatically or from the manifest). `cache.MaskCache` keeps the masks on
disk; `masker.Masker` applies a run's masking to clips; `clips.mask_clips`
masks a whole dataset with a summary; `preview.write_preview` draws them.
"""

from __future__ import annotations

from .masker import Masker, compute_masks, fill_background, masker_for  # noqa: F401
from .settings import FILLS, METHODS, Masking, Prompt  # noqa: F401


def run_masker(info) -> "Masker | None":
    """The `Masker` of a run (a `snapaction.run.RunInfo`) trained on masked clips, or None; its masks are cached
    where the run cached its own (falling back to SnapAction's cache folder)."""
    if not (info.masking or {}).get("method"):  # no masking, or --mask auto kept none
        return None
    from ..training.config import DEFAULT_CACHE

    return masker_for(info.masking, info.config.get("cache_dir") or DEFAULT_CACHE)


def check_masking(masking: "Masking | None") -> None:
    """Raise at once, in one sentence, when a method cannot run here: person without mediapipe, sam2 without its
    checkpoint on disk (before any clip is read or model built)."""
    if masking is None:
        return
    if masking.method == "person":
        from ..pose.landmarks import require_mediapipe

        require_mediapipe()
    elif masking.method == "sam2":
        from .sam2 import resolve_checkpoint

        resolve_checkpoint(masking.checkpoint)
