"""JSON that arrives from outside (spec files, weight sidecars): bounded, UTF-8, finite numbers only.

Python's json takes NaN, Infinity and 1e999 (as inf), recurses until RecursionError on deep
nesting, and a reader of `/dev/zero` never returns; each of these becomes a `ValueError` whose
message says what is wrong, for the caller to wrap in its own error type.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

MAX_JSON_BYTES = 1_000_000  # a spec is about 1 KB, a sidecar with 1000 labels about 30 KB
MAX_INTEGER_DIGITS = 18  # every count here fits; longer ones are typos or attacks


def parse_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_short_int)
    except RecursionError:
        raise ValueError("The JSON is nested too deeply to read.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"Not valid JSON: {error}.") from None


def read_json_file(path: str | os.PathLike[str]) -> Any:
    """The JSON in a file, read no further than MAX_JSON_BYTES; OSError when it cannot be opened."""
    with open(path, "rb") as file:
        return parse_json(json_text(file.read(MAX_JSON_BYTES + 1)))


def json_text(data: bytes) -> str:
    """The text of a JSON file's (or an upload's) bytes: at most MAX_JSON_BYTES, UTF-8."""
    if len(data) > MAX_JSON_BYTES:
        raise ValueError(f"the file is larger than {MAX_JSON_BYTES:,} bytes, too large for a JSON description.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"the file is not UTF-8 text (byte {error.start} cannot be read); save it as UTF-8 JSON."
        ) from None
    return text


def _refuse_constant(name: str) -> float:
    raise ValueError(f"The JSON holds {name}, which is not a number; write a finite number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"The JSON holds {text}, too large for a number; write a finite one.")
    return value


def _short_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"The JSON holds an integer of {len(text.lstrip('-'))} digits; no value here needs more than "
                         f"{MAX_INTEGER_DIGITS}.")
    return int(text)
