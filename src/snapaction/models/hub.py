"""Where a backbone's files are: the one resolver of ``--backbone`` values (a local folder or a hub id).

Everything that reads a backbone's files (weights, config, processor config)
goes through `resolve_backbone`, so the local-path rule and the "how to fetch
it" sentence exist once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import BackboneError

log = logging.getLogger(__name__)


def is_local(backbone: str) -> bool:
    """True when `backbone` names a folder or file rather than a hub id."""
    return Path(backbone).expanduser().exists() or backbone.startswith((".", "/", "~")) or backbone.count("/") > 1


def offline() -> bool:
    """True when the hub must not be tried (``HF_HUB_OFFLINE``)."""
    import huggingface_hub.constants as hub

    return bool(hub.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "0") in ("1", "true", "True", "ON", "YES")


def resolve_backbone(backbone: str) -> str:
    """A local folder holding the backbone's files: the folder itself, or its copy in the local hub cache.

    Downloads once when the hub is reachable and not switched off. Raises
    `BackboneError` in one sentence when it is on neither, saying how to get it
    (and naming the presets, which need no download). Loads no model library.
    """
    from .presets import preset_names

    alternative = f"--backbone {preset_names()}, which need no download"
    path = Path(backbone).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackboneError(f"backbone folder {path} has no config.json; point --backbone at a folder written by save_pretrained")
        return str(path)
    if is_local(backbone):
        raise BackboneError(f"backbone folder {path} does not exist")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(backbone, local_files_only=True)
    except Exception:  # not cached, or not a valid repo id: both mean "not here"
        pass
    if not offline():
        try:
            return snapshot_download(backbone, allow_patterns=["*.json", "*.safetensors", "*.txt"])
        except Exception as err:  # no network, unknown repo, gated repo: all end the same way
            log.debug("download of %s failed: %s", backbone, err)
    raise BackboneError(
        f"backbone {backbone!r} is not on this machine and could not be downloaded: fetch it once on a "
        f"connected machine with `hf download {backbone}` (the hub cache is ~/.cache/huggingface), or pass "
        f"--backbone a local folder" + (f", or {alternative}" if alternative else "")
    )


def check_backbone(backbone: str) -> None:
    """Raise at once, without loading a model library, when `backbone` cannot be used here: a preset whose
    extra is not installed, or a hub id or folder that is not on this machine (and cannot be downloaded)."""
    from .presets import preset

    named = preset(backbone)
    if named is None:
        resolve_backbone(backbone)
    elif named.available is not None:
        named.available()
