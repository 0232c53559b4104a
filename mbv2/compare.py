"""Named configurations side by side, the TF-slim preset grid and its published reference points.

Every count comes from `mbv2.analysis.analyse` and `mbv2.memory.peak_activation`; latency is
attached only when it was measured (`mbv2.latency`), never estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mbv2.analysis import analyse
from mbv2.latency import LatencyResult
from mbv2.memory import peak_activation
from mbv2.spec import ArchSpec

PRESET_WIDTHS = (1.4, 1.3, 1.0, 0.75, 0.5, 0.35)
PRESET_RESOLUTIONS = (224, 192, 160, 128, 96)

TF_SLIM_SOURCE = (
    "TF-slim, tensorflow/models research/slim/nets/mobilenet/README.md "
    "(Mobilenet V2 Imagenet Checkpoints; latency: TF-Lite on one large core of a Pixel 1)"
)
TF_SLIM_SOURCE_SHORT = "TF-slim README"  # the same source where there is room for a name only (a plot's hover)


def size_name(width_mult: float, resolution: int) -> str:
    """"1.0/224": width and resolution as TF-slim writes them in its checkpoint names."""
    return f"{float(width_mult)}/{resolution}"


def export_stem(width_mult: float, resolution: int) -> str:
    """"mobilenet_v2_1.0_224": TF-slim's checkpoint name, which exported files are named after."""
    return "mobilenet_v2_" + size_name(width_mult, resolution).replace("/", "_")


@dataclass(frozen=True)
class Reference:
    """One published TF-slim checkpoint. TF-slim counts no BatchNorm parameters and has 1001 classes."""

    width_mult: float
    resolution: int
    macs_m: float
    params_m: float
    top1: float
    top5: float
    pixel1_ms: float

    @property
    def name(self) -> str:
        return export_stem(self.width_mult, self.resolution)


TF_SLIM_REFERENCES: tuple[Reference, ...] = tuple(
    Reference(*values)
    for values in (
        (1.4, 224, 582, 6.06, 75.0, 92.5, 138.0),
        (1.3, 224, 509, 5.34, 74.4, 92.1, 123.0),
        (1.0, 224, 300, 3.47, 71.8, 91.0, 73.8),
        (1.0, 192, 221, 3.47, 70.7, 90.1, 55.1),
        (1.0, 160, 154, 3.47, 68.8, 89.0, 40.2),
        (1.0, 128, 99, 3.47, 65.3, 86.9, 27.6),
        (1.0, 96, 56, 3.47, 60.3, 83.2, 17.6),
        (0.75, 224, 209, 2.61, 69.8, 89.6, 55.8),
        (0.75, 192, 153, 2.61, 68.7, 88.9, 41.6),
        (0.75, 160, 107, 2.61, 66.4, 87.3, 30.4),
        (0.75, 128, 69, 2.61, 63.2, 85.3, 21.9),
        (0.75, 96, 39, 2.61, 58.8, 81.6, 14.2),
        (0.5, 224, 97, 1.95, 65.4, 86.4, 28.7),
        (0.5, 192, 71, 1.95, 63.9, 85.4, 21.1),
        (0.5, 160, 50, 1.95, 61.0, 83.2, 14.9),
        (0.5, 128, 32, 1.95, 57.7, 80.8, 9.9),
        (0.5, 96, 18, 1.95, 51.2, 75.8, 6.4),
        (0.35, 224, 59, 1.66, 60.3, 82.9, 19.7),
        (0.35, 192, 43, 1.66, 58.2, 81.2, 14.6),
        (0.35, 160, 30, 1.66, 55.7, 79.1, 10.5),
        (0.35, 128, 20, 1.66, 50.8, 75.0, 6.9),
        (0.35, 96, 11, 1.66, 45.5, 70.4, 4.5),
    )
)


@dataclass(frozen=True)
class NamedConfig:
    name: str
    spec: ArchSpec


def preset(width_mult: float, resolution: int) -> NamedConfig:
    """The paper's architecture at a TF-slim width and resolution."""
    spec = ArchSpec(width_mult=width_mult, resolution=resolution)
    return NamedConfig(f"MobileNetV2 {size_name(width_mult, resolution)}", spec)


def tf_slim_presets() -> tuple[NamedConfig, ...]:
    """The full width x resolution grid (TF-slim published 22 of these 30)."""
    return tuple(preset(width, resolution) for width in PRESET_WIDTHS for resolution in PRESET_RESOLUTIONS)


def published_reference(spec: ArchSpec) -> Reference | None:
    """TF-slim's figures for this exact configuration: the paper's table at a published width/resolution."""
    for reference in TF_SLIM_REFERENCES:
        if spec == ArchSpec(width_mult=reference.width_mult, resolution=reference.resolution, padding=spec.padding):
            return reference
    return None


@dataclass(frozen=True)
class ConfigSummary:
    """One configuration's row: counts for batch 1, latency only if it was measured."""

    name: str
    spec: ArchSpec
    params: int
    madds_paper: int
    madds_fvcore: int
    peak_activation_bytes: int
    peak_activation_layer: str
    latency: LatencyResult | None = None

    @property
    def reference(self) -> Reference | None:
        return published_reference(self.spec)

    def as_row(self) -> dict[str, object]:
        """A flat row for tables, CSV and JSON; latency and TF-slim columns are None when absent."""
        reference = self.reference
        latency = self.latency
        return {
            "name": self.name,
            "width_mult": self.spec.width_mult,
            "resolution": self.spec.resolution,
            "params": self.params,
            "madds_paper": self.madds_paper,
            "madds_fvcore": self.madds_fvcore,
            "peak_activation_bytes": self.peak_activation_bytes,
            "peak_activation_layer": self.peak_activation_layer,
            "latency_median_ms": round(latency.median_ms, 3) if latency else None,
            "latency_batch_size": latency.settings.batch_size if latency else None,
            "latency_threads": latency.settings.threads if latency else None,
            "latency_runs": latency.settings.runs if latency else None,
            "tf_slim_macs_m": reference.macs_m if reference else None,
            "tf_slim_params_m": reference.params_m if reference else None,
            "tf_slim_top1": reference.top1 if reference else None,
            "tf_slim_top5": reference.top5 if reference else None,
            "tf_slim_pixel1_ms": reference.pixel1_ms if reference else None,
        }


def summarise(config: NamedConfig, latency: LatencyResult | None = None) -> ConfigSummary:
    analysis = analyse(config.spec)
    peak = peak_activation(analysis)
    return ConfigSummary(
        name=config.name,
        spec=config.spec,
        params=analysis.params,
        madds_paper=analysis.madds("paper"),
        madds_fvcore=analysis.madds("fvcore"),
        peak_activation_bytes=peak.bytes,
        peak_activation_layer=peak.layer,
        latency=latency,
    )


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower is better), by x."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    front: list[int] = []
    for index in order:
        if not front or points[index][1] < points[front[-1]][1]:
            front.append(index)
    return front
