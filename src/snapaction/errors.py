"""The exceptions SnapAction raises for problems a user can fix.

Every message says what was received, what was expected, and how to fix it.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable


class SnapActionError(Exception):
    """Base class: a problem with the user's input, data or setup (not a bug)."""


class ClipError(SnapActionError):
    """One clip could not be used. Batch callers report it and skip the clip."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot use clip {self.path}: {reason}")


class DataError(SnapActionError):
    """A dataset folder, manifest or split cannot be used as a whole."""


class UsageError(SnapActionError):
    """A command's arguments are in the wrong order or of the wrong kind (a clip where the run folder goes):
    the command line prints the command's usage above the sentence."""


class ConfigError(SnapActionError):
    """A configuration value is out of range or inconsistent with another."""


class BackboneError(SnapActionError):
    """A backbone cannot be found or loaded."""


class RunError(SnapActionError):
    """A run folder is missing, incomplete, or from an incompatible version."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a sentence on what was kept and how to go on (`snapaction.cli` prints it)."""

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """' Did you mean X?' for the closest of `choices`, or '' when none is close."""
    match = difflib.get_close_matches(value, list(choices), n=1)
    return f" Did you mean {match[0]!r}?" if match else ""
