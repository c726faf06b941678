"""The `snapaction` command: a table of subcommands, each a thin layer over one library function.

Each subcommand lives in ``snapaction/commands/<module>.py`` and defines
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Heavy libraries are imported inside ``run`` so that ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import codecs
import importlib
import logging
import sys

from . import __version__
from .errors import SnapActionError, UsageError

# command words -> module under snapaction.commands
COMMANDS: dict[tuple[str, ...], str] = {
    ("demo",): "demo",
    ("demo-data",): "demo_data",
    ("data", "check"): "data_check",
    ("train",): "train",
    ("eval",): "eval",
    ("predict",): "predict",
    ("curve",): "curve",
    ("serve",): "serve",
    ("studio",): "studio",
    ("export",): "export",
    ("pose",): "pose",
    ("mask",): "mask",
    ("shard",): "shard",
    ("pretrain",): "pretrain",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. Only the command named in `argv` gets its options (and their imports)
    built, so that `snapaction --help` and light commands start fast; without `argv`, all do."""
    parser = argparse.ArgumentParser(
        prog="snapaction",
        description="Teach a computer new actions from a few dozen short clips per class.",
    )
    parser.add_argument("--version", action="version", version=f"snapaction {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug messages")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    words_given = [a for a in (argv or []) if not a.startswith("-")]
    for words, module_name in COMMANDS.items():
        module = importlib.import_module(f"snapaction.commands.{module_name}")
        where = top
        for depth, word in enumerate(words[:-1]):
            if word not in groups:
                group = top.add_parser(word, help=f"{word} commands")
                groups[word] = group.add_subparsers(dest=f"sub{depth}", metavar="COMMAND", required=True)
            where = groups[word]
        sub = where.add_parser(
            words[-1],
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if argv is None or words_given[: len(words)] == list(words):
            module.add_arguments(sub)
        sub.set_defaults(_run=module.run, _usage=sub.format_usage)
    return parser


def _escape_unprintable(err: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a byte of a non-UTF-8 file name (held as a surrogate) prints as \\xNN, anything else as \\uNNNN."""
    bad = err.object[err.start : err.end]
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c.encode("unicode_escape").decode("ascii")
                   for c in bad), err.end


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    codecs.register_error("snapaction-escape", _escape_unprintable)
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints escaped, never fails after the work is done
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="snapaction-escape")
    args = build_parser(argv).parse_args(argv)
    # SnapAction's own messages at INFO; the libraries underneath only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("snapaction").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args._run(args) or 0)
    except SnapActionError as err:
        if isinstance(err, UsageError):
            print(args._usage(), end="", file=sys.stderr)
        print(f"snapaction: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        if getattr(err, "message", ""):  # what was kept, and the command that goes on
            print(err.message, flush=True)
        print("snapaction: interrupted", file=sys.stderr)
        return 130
