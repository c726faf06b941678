"""Per-clip SAM 2 prompts from a CSV manifest: optional ``point`` ("x y") and ``box`` ("x0 y0 x1 y1") columns.

Coordinates are pixels of the clip as it is displayed; a row with neither
column is prompted automatically. A prompt that cannot be read is an error
naming the line, so nothing the user wrote is silently ignored.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import DataError
from .settings import Prompt


def manifest_prompts(manifest: str | Path) -> dict[str, Prompt]:
    """{resolved clip path: Prompt} for every manifest row with a ``point`` or ``box`` (empty without those columns)."""
    manifest = Path(manifest)
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    names = [c.strip().lower() for c in rows[0]]
    if "path" not in names or not ({"point", "box"} & set(names)):
        return {}
    col = {n: names.index(n) for n in ("path", "point", "box") if n in names}
    prompts = {}
    for n, row in enumerate(rows[1:], 2):
        cell = {k: (row[i].strip() if i < len(row) else "") for k, i in col.items()}
        if not cell["path"]:
            continue
        values = {k: _numbers(manifest, n, k, cell.get(k, ""), {"point": 2, "box": 4}[k]) for k in ("point", "box")}
        if values["point"] or values["box"]:
            prompts[str((manifest.parent / cell["path"]).resolve())] = Prompt(values["point"], values["box"])
    return prompts


def _numbers(manifest: Path, line: int, column: str, text: str, count: int):
    if not text:
        return None
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        values = ()
    if len(values) != count:
        shape = "x y" if count == 2 else "x0 y0 x1 y1"
        raise DataError(f"line {line} of {manifest} has {column} {text!r}; write it as {count} numbers \"{shape}\" "
                        f"(pixels of the clip), or leave it empty to prompt SAM 2 automatically")
    if column == "box" and not (values[0] < values[2] and values[1] < values[3]):
        raise DataError(f"line {line} of {manifest} has box {text!r} whose corners are not x0 < x1 and y0 < y1; "
                        "write it as \"x0 y0 x1 y1\" (top-left, then bottom-right)")
    return values
