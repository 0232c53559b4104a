"""The table a sweep writes: one row per configuration, CSV or JSON lines, appended as rows arrive.

Appending (not writing at the end) is what makes a sweep resumable: every finished row is on disk,
flushed, the moment it arrives, and a restarted sweep skips the configurations whose `spec` column
(the architecture as compact JSON) is already in the file. A row cut short by a kill is dropped.
The app's Compare view reads the same files back (`read_table`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, TextIO

from mbv2.errors import SweepFileError
from mbv2.jsonfile import parse_json

FIELDS: tuple[str, ...] = (
    "name", "width_mult", "resolution", "params", "madds_paper", "madds_fvcore", "peak_activation_bytes",
    "peak_activation_layer", "top1", "top5", "agreement", "images", "latency_median_ms", "latency_batch_size",
    "latency_threads", "latency_runs", "spec",
)
NUMBER_FIELDS = frozenset(FIELDS) - {"name", "peak_activation_layer", "spec"}
REQUIRED_FIELDS = ("name", "params", "madds_paper", "spec")  # what a plot and a resume cannot do without
SUFFIXES = (".csv", ".jsonl")
MAX_TABLE_BYTES = 20_000_000  # 1,000 rows are about 1 MB; an upload much larger is not a sweep table

Row = dict[str, object]


def spec_key(spec_dict: dict) -> str:
    """The `spec` column: one architecture, one string, whatever the order its fields were written in."""
    return json.dumps(spec_dict, sort_keys=True, separators=(",", ":"))


def check_table_path(path: Path) -> None:
    """Refuse, before a sweep computes anything, a place its table could not be written to."""
    if path.suffix.lower() not in SUFFIXES:
        raise SweepFileError(f"The table's file must end in {' or '.join(SUFFIXES)}, got {path}.")
    if not path.parent.is_dir():
        raise SweepFileError(f"The folder {path.parent} does not exist; create it first, or write the table elsewhere.")
    if path.is_dir():
        raise SweepFileError(f"{path} is a folder; give a file name ending in {' or '.join(SUFFIXES)}.")


def read_table(data: bytes, suffix: str, name: str) -> list[Row]:
    """The rows of a sweep table (the bytes of a .csv or .jsonl file), numbers as numbers, every row checked."""
    if suffix.lower() not in SUFFIXES:
        raise SweepFileError(f"{name} is not a sweep table: it must end in {' or '.join(SUFFIXES)}.")
    if len(data) > MAX_TABLE_BYTES:
        raise SweepFileError(f"{name} is larger than {MAX_TABLE_BYTES // 10**6} MB, too large for a sweep table.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SweepFileError(f"{name} is not UTF-8 text (byte {error.start}); upload the file `mbv2 sweep` wrote.")
    complete = text[: text.rfind("\n") + 1]  # a last line without its newline was cut short by a kill
    rows = list(_csv_rows(complete, name) if complete and suffix.lower() == ".csv" else _jsonl_rows(complete, name))
    if not rows:
        raise SweepFileError(f"{name} holds no rows yet.")
    return rows


def _csv_rows(text: str, name: str) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [field for field in REQUIRED_FIELDS if field not in (reader.fieldnames or ())]
    if missing:
        raise SweepFileError(f"{name} has no column {', '.join(missing)}; it was not written by `mbv2 sweep`.")
    for line, row in enumerate(reader, start=2):
        yield _checked({key: (None if value == "" else value) for key, value in row.items()}, name, line)


def _jsonl_rows(text: str, name: str) -> Iterator[Row]:
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            row = parse_json(content)
        except ValueError as error:
            raise SweepFileError(f"Line {line} of {name}: {error} Fix or remove that line.") from None
        if not isinstance(row, dict):
            raise SweepFileError(f"Line {line} of {name} is not a JSON object; each line must be one row.")
        yield _checked(row, name, line)


def _checked(row: Row, name: str, line: int) -> Row:
    missing = [field for field in REQUIRED_FIELDS if row.get(field) is None]
    if missing:
        raise SweepFileError(f"Line {line} of {name} has no {', '.join(missing)}; it was not written by `mbv2 sweep`.")
    checked = dict(row)
    for field in NUMBER_FIELDS & row.keys():
        value = row[field]
        if value is None:
            continue
        try:
            checked[field] = float(value)
        except (TypeError, ValueError):
            raise SweepFileError(f"Line {line} of {name}: {field} must be a number, got {value!r}.") from None
    return checked


def done_specs(path: Path) -> frozenset[str]:
    """The `spec` column of every complete row already in `path` (none when there is no file yet)."""
    if not path.exists() or path.stat().st_size == 0:
        return frozenset()
    rows = read_table(path.read_bytes(), path.suffix, str(path))
    return frozenset(spec_key(json.loads(str(row["spec"]))) for row in rows)


@contextmanager
def appender(path: Path) -> Iterator[Callable[[Row], None]]:
    """A function that appends one row to `path` and flushes it, so a kill loses at most the row being written."""
    _drop_partial_line(path)
    is_new = not path.exists() or path.stat().st_size == 0
    try:
        file: TextIO = open(path, "a", newline="")
    except OSError as error:
        raise SweepFileError(f"Cannot write {path}: {error.strerror}.") from None
    with file:
        if path.suffix.lower() == ".csv":
            writer = csv.DictWriter(file, fieldnames=FIELDS)
            if is_new:
                writer.writeheader()
            elif _csv_header(path) != FIELDS:
                raise SweepFileError(
                    f"{path} has other columns than this version of `mbv2 sweep` writes; write to a new file."
                )
            write = writer.writerow
        else:
            def write(row: Row) -> None:
                file.write(json.dumps(row) + "\n")

        def append(row: Row) -> None:
            write({field: row.get(field) for field in FIELDS})
            file.flush()

        yield append


def _csv_header(path: Path) -> tuple[str, ...]:
    with open(path, newline="") as file:
        return tuple(next(csv.reader(file), ()))


def _drop_partial_line(path: Path) -> None:
    """Cut a last line that a killed sweep left half-written; the next append would run on from it."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])
