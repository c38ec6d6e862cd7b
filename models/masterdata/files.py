"""Reading master-data files: CSV with a header row, or JSON lines (one object per line).

CSV lists (allergens, diets, dietary_restrictions) are `;`-separated (`gluten;milk`);
booleans are `true`/`false`, `yes`/`no` or `1`/`0`; an empty cell is "not given".
Row numbers are the file's line numbers, so an error points at the line to fix.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from models.masterdata.records import MasterDataError, RowError

# A chain's catalog is tens of thousands of products; this bounds what a wrong file costs.
MAX_FILE_BYTES = 200 * 2**20


def read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, values) for every record in `path` (.csv, or .jsonl / .ndjson / .json
    lines); MasterDataError if the file itself cannot be read as such."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise MasterDataError([RowError(0, "file", f"{size} bytes is more than the"
                                                   f" {MAX_FILE_BYTES} bytes accepted")])
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        return _csv_rows(text)
    return _json_lines(text)


def _csv_rows(text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines(), strict=True)
    rows = []
    try:
        for values in reader:
            if None in values:
                raise MasterDataError([RowError(reader.line_num, "record",
                                                "more cells than the header has columns")])
            if not any((value or "").strip() for value in values.values()):
                continue  # a blank line
            rows.append((reader.line_num, {key.strip(): value for key, value in values.items()
                                           if key is not None}))
    except csv.Error as exc:
        raise MasterDataError([RowError(reader.line_num, "record", str(exc))]) from None
    return rows


def _json_lines(text: str) -> list[tuple[int, dict[str, Any]]]:
    rows, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            errors.append(RowError(number, "record", f"not valid JSON: {exc}"))
            continue
        if not isinstance(value, dict):
            errors.append(RowError(number, "record", "not a JSON object"))
            continue
        rows.append((number, value))
    if errors:
        raise MasterDataError(errors)
    return rows
