"""A comparison as a file: named architectures and the latencies measured for them, in JSON.

Written by Compare's "Save" and read back by its "Load", so a session's list and its measurements
outlive the browser tab. Measurements keep their settings and machine, so a loaded number still
says what it was measured on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from mbv2.compare import NamedConfig
from mbv2.errors import ComparisonFileError, MBV2Error, SpecError
from mbv2.jsonfile import parse_json
from mbv2.latency import LatencyResult, LatencySettings
from mbv2.spec import ArchSpec

FORMAT = "mbv2-comparison"
VERSION = 1
Entry = TypeVar("Entry")


@dataclass(frozen=True)
class Comparison:
    configs: tuple[NamedConfig, ...]
    latencies: tuple[tuple[ArchSpec, LatencyResult], ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "configs": [{"name": config.name, "spec": config.spec.to_dict()} for config in self.configs],
                "latencies": [{"spec": spec.to_dict(), **asdict(result)} for spec, result in self.latencies],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Comparison:
        try:
            data = parse_json(text)
        except ValueError as error:
            raise ComparisonFileError(f"This file is not readable JSON: {error}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ComparisonFileError(
                "This file is not a saved comparison: save one with Compare's \"Save the list\" button. "
                "(An architecture's own JSON is loaded in the Architecture view.)"
            )
        return cls(_read_all(data, "configs", _config), _read_all(data, "latencies", _latency))


def _read_all(data: dict[str, Any], field: str, read: Callable[[Any], Entry]) -> tuple[Entry, ...]:
    """Every entry of a list field, any problem named by the field and the entry's position."""
    entries = data.get(field, [])
    if not isinstance(entries, list):
        raise ComparisonFileError(f'"{field}" in the comparison file must be a list, got {type(entries).__name__}.')
    read_entries = []
    for number, entry in enumerate(entries, start=1):
        try:
            read_entries.append(read(entry))
        except (MBV2Error, KeyError, TypeError, ValueError) as error:
            if isinstance(error, KeyError):
                detail = f"the field {error.args[0]!r} is missing"
            else:
                detail = "; ".join(error.problems) if isinstance(error, SpecError) else str(error)
            raise ComparisonFileError(f'Entry {number} of "{field}" cannot be read: {detail}') from None
    return tuple(read_entries)


def _config(entry: dict[str, Any]) -> NamedConfig:
    return NamedConfig(str(entry["name"]), ArchSpec.from_dict(entry["spec"]))


def _latency(entry: dict[str, Any]) -> tuple[ArchSpec, LatencyResult]:
    samples = tuple(float(sample) for sample in entry["samples_ms"])
    if not samples:
        raise ValueError("it holds no timed runs")
    settings = LatencySettings(**entry["settings"])
    # Files saved before the engine was recorded were all timed in PyTorch eager, the default.
    engine = str(entry.get("engine", LatencyResult.engine))
    return ArchSpec.from_dict(entry["spec"]), LatencyResult(settings, samples, str(entry["machine"]), engine)
