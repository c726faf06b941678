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

    return local_checkpoint(backbone, "backbone", "--backbone", f"--backbone {preset_names()}, which need no download")


def local_checkpoint(name: str, what: str, flag: str, alternative: str, download: bool = True) -> str:
    """The local folder of checkpoint `name` (a folder, or a hub id in the local hub cache, fetched once when
    `download` and the hub is on); `BackboneError` in one sentence naming `what` it is, the `flag` that takes a
    folder, and the `alternative` that needs none. Every checkpoint SnapAction reads is found here."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackboneError(f"{what} folder {path} has no config.json; point {flag} at a folder written by save_pretrained")
        return str(path)
    if is_local(name):
        raise BackboneError(f"{what} folder {path} does not exist")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:  # not cached, or not a valid repo id: both mean "not here"
        pass
    tried = download and not offline()
    if tried:
        try:
            return snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.txt"])
        except Exception as err:  # no network, unknown repo, gated repo: all end the same way
            log.debug("download of %s failed: %s", name, err)
    raise BackboneError(
        f"{what} {name!r} is not on this machine{' and could not be downloaded' if tried else ''}: fetch it once "
        f"with `hf download {name}` on a connected machine (the hub cache is ~/.cache/huggingface), or pass "
        f"{flag} a local folder, or {alternative}"
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
