"""Typed configuration: dataclass fields documented once, reused as CLI options.

A field made with `option(default, "help text")` becomes ``--field-name`` on the
command line with that help and its default shown. `problems()` style checks
live in each config's ``__post_init__`` and report every bad value at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from .errors import ConfigError


def option(default: Any, help: str, choices: tuple | None = None, flag: str | None = None, aliases: tuple[str, ...] = ()) -> Any:
    """A dataclass field with help text (and optional choices) for the CLI; `aliases` are other flags that set it
    too (older or other commands' names), accepted but left out of --help so that it shows one name."""
    meta = {"help": help, "choices": choices, "flag": flag, "aliases": aliases}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def same_as(cls: type, name: str, **changes: Any) -> Any:
    """The field `name` of dataclass `cls` again, default and help included, for a config that passes it on.

    `changes` replace metadata such as ``help``; one documented field, two configs.
    """
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    meta = {**f.metadata, **changes}
    if f.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=f.default_factory, metadata=meta)
    return dataclasses.field(default=f.default, metadata=meta)


def check(problems: list[str], what: str) -> None:
    """Raise one `ConfigError` listing every problem found, or do nothing."""
    if problems:
        raise ConfigError(f"invalid {what}:\n  - " + "\n  - ".join(problems))


def add_arguments(parser: argparse.ArgumentParser, cls: type, title: str | None = None,
                  only: tuple[str, ...] | None = None, leave_out: tuple[str, ...] = ()) -> None:
    """Add one ``--option`` per documented field of dataclass `cls` (defaults shown in help), in a group `title`.

    `only` (in its own order) or `leave_out` split one config's fields over several groups of the help.
    """
    group = parser.add_argument_group(title or cls.__name__)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for f in ([fields[name] for name in only] if only is not None else fields.values()):
        if "help" not in f.metadata or f.name in leave_out:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        kind = _base_type(hints[f.name])
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        shown = "none" if default is None else default
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind in (list, tuple):
            kwargs["nargs"] = "+"
            kwargs["type"] = _item_type(hints[f.name])
            shown = " ".join(map(str, default)) if default else "none"
        else:
            kwargs["type"] = kind
            kwargs["metavar"] = f.name.upper() if not f.metadata.get("choices") else None
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        text = f.metadata["help"]
        # Help that explains its own default (a None that means "chosen for you") keeps its words.
        text = text if "default" in text.lower() else f"{text} (default: {shown})"
        kwargs["help"] = text.replace("%", "%%")  # argparse %-formats help: "27% slower" must stay text
        group.add_argument(flag, **{k: v for k, v in kwargs.items() if v is not None})
        for alias in f.metadata.get("aliases") or ():
            group.add_argument(alias, **{k: v for k, v in kwargs.items() if v is not None and k != "help"}, help=argparse.SUPPRESS)


def from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build `cls` from parsed options: fields not given keep their defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(overrides)
    return cls(**values)


def to_dict(config: Any) -> dict:
    """A config as plain JSON-ready values (nested dataclasses included)."""
    return dataclasses.asdict(config)


def _base_type(hint: Any) -> type:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base_type(args[0])
    if origin in (list, tuple):
        return origin
    return hint if isinstance(hint, type) else str


def _item_type(hint: Any) -> type:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = [a for a in typing.get_args(hint) if a is not type(None)][0]
    args = typing.get_args(hint)
    return args[0] if args and isinstance(args[0], type) else str
