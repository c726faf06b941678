"""What SnapAction says: every command's --help, every input kind a help text lists, and one wording per problem
with a clip, whichever command meets it."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from snapaction.cli import COMMANDS, main

# --- help texts -----------------------------------------------------------------------

DEBRIS = {
    "argparse internals": re.compile(r"'option_strings'|'dest':|<argparse\.|object at 0x"),
    "an unrendered %-format": re.compile(r"%\(|%%|%[sdrfgi]\b"),
    "a Python None": re.compile(r"\bNone\b"),
    "a default that says nothing": re.compile(r"\(default: ?(none|\[\]|\(\)|''|)\)", re.IGNORECASE),
}


def help_text(*words: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main([*words, "--help"])
    assert done.value.code == 0, words
    return out.getvalue()


def option_entries(text: str) -> list[str]:
    """Each option's (or positional's) entry of a help text, its wrapped lines joined."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if re.match(r"^  \S", line):
            entries.append([line.strip()])
        elif re.match(r"^ {3,}\S", line) and entries:
            entries[-1].append(line.strip())
        else:
            entries.append([])  # a heading or a blank line ends an entry
    return [" ".join(e) for e in entries if e]


def every_help() -> list[tuple[str, ...]]:
    groups = sorted({words[:-1] for words in COMMANDS if len(words) > 1})
    return [()] + groups + sorted(COMMANDS)


@pytest.mark.parametrize("words", every_help(), ids=lambda w: " ".join(w) or "snapaction")
def test_every_help_text_renders_clean(words):
    text = help_text(*words)
    flat = " ".join(text.split())  # a default wrapped onto the next line reads as one
    problems = [f"{what}: ...{flat[max(0, m.start() - 60):m.end() + 20]}" for what, pattern in DEBRIS.items() for m in pattern.finditer(flat)]
    problems += [f"two defaults in one option: {e}" for e in option_entries(text) if len(re.findall(r"\(default\b", e)) > 1]
    assert not problems, f"`snapaction {' '.join(words)} --help`:\n" + "\n".join(problems)


def test_a_percent_in_a_documented_field_is_shown_as_written():
    entry = next(e for e in option_entries(help_text("train")) if e.startswith("--gradient-checkpointing"))
    assert entry.endswith("much less memory, about 27% slower (LoRA on VideoMAE-base, CPU) (default: False)") and "{" not in entry, entry
