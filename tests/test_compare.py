"""Named configurations, TF-slim's published points, peak memory, latency and sweeps, on real counts."""

import pytest
import torch

from mbv2.analysis import analyse
from mbv2.compare import (
    PRESET_RESOLUTIONS,
    PRESET_WIDTHS,
    TF_SLIM_REFERENCES,
    NamedConfig,
    pareto_front,
    preset,
    published_reference,
    summarise,
    tf_slim_presets,
)
from mbv2.device import available_cores
from mbv2.latency import LatencyResult, LatencySettings, measure_models, measure_spec
from mbv2.memory import peak_activation
from mbv2.spec import ArchSpec, Stage
from mbv2.sweep import grid, run


def test_presets_are_the_tf_slim_grid_and_every_published_point_is_one():
    presets = tf_slim_presets()
    assert len(presets) == len(PRESET_WIDTHS) * len(PRESET_RESOLUTIONS) == 30
    assert len({config.name for config in presets}) == 30
    assert presets[0].name == "MobileNetV2 1.4/224"
    published = [published_reference(config.spec) for config in presets]
    assert sum(reference is not None for reference in published) == len(TF_SLIM_REFERENCES) == 22
    assert published_reference(ArchSpec(width_mult=1.4, resolution=192)) is None  # TF-slim has 1.4 at 224 only
    assert published_reference(ArchSpec(padding="tf_same")).name == "mobilenet_v2_1.0_224"
    assert published_reference(ArchSpec(stages=ArchSpec().stages[:-1])) is None  # an edited table is not TF-slim's


# Widths and resolutions test_analysis.py does not already hold against TF-slim; the rest ran once by hand, all exact.
SPOT_CHECKED = {(1.4, 224), (1.3, 224), (0.75, 96), (0.5, 96), (0.35, 96), (0.35, 128)}


@pytest.mark.parametrize(
    "reference",
    [reference for reference in TF_SLIM_REFERENCES if (reference.width_mult, reference.resolution) in SPOT_CHECKED],
    ids=lambda reference: reference.name,
)
def test_published_macs_are_our_paper_count_truncated_to_millions(reference):
    # TF-slim prints whole millions, truncated (18.89M -> 18), so a mistyped figure shows up exactly.
    summary = summarise(preset(reference.width_mult, reference.resolution))
    assert summary.madds_paper // 1_000_000 == reference.macs_m


def test_summary_is_the_analysis_of_the_config():
    summary = summarise(preset(1.0, 224))
    analysis = analyse(ArchSpec())
    assert (summary.params, summary.madds_paper, summary.madds_fvcore) == (3_504_872, 300_774_272, 314_193_216)
    assert summary.params == analysis.params and summary.madds_fvcore == analysis.madds("fvcore")
    row = summary.as_row()
    assert row["tf_slim_top1"] == 71.8 and row["tf_slim_pixel1_ms"] == 73.8
    assert row["latency_median_ms"] is None  # never a guess: empty until measured


def test_peak_activation_is_the_stride_two_depthwise_of_block_two():
    peak = peak_activation(analyse(ArchSpec()))
    # 96 expanded channels at 112x112 in, 56x56 out, float32.
    assert peak.bytes == (96 * 112 * 112 + 96 * 56 * 56) * 4 == 6_021_120
    assert peak.layer == "features.2.conv.1"


def test_peak_activation_keeps_a_residual_blocks_input_alive():
    # Row 2 is a stride-1, 16 -> 16 block: its input waits for the add while the expanded maps exist.
    spec = ArchSpec(stages=(Stage(1, 16, 1, 1), Stage(6, 16, 2, 1), Stage(6, 32, 1, 2)), last_channels=16)
    peak = peak_activation(analyse(spec))
    assert peak.bytes == (96 + 96 + 16) * 112 * 112 * 4
    assert peak.layer == "features.2.conv.1"


def test_pareto_front_keeps_only_undominated_points():
    points = [(300, 70), (100, 30), (150, 40), (200, 25), (50, 90), (220, 26)]
    assert pareto_front(points) == [4, 1, 3]


def test_latency_is_measured_with_its_settings_stated():
    calls = []
    threads = torch.get_num_threads()
    settings = LatencySettings(runs=3, warmup=1, batch_size=2, threads=1)
    tiny = ArchSpec(width_mult=0.35, resolution=64)
    result = measure_spec(tiny, settings, lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert len(result.samples_ms) == 3 and all(sample > 0 for sample in result.samples_ms)
    assert min(result.samples_ms) <= result.median_ms <= max(result.samples_ms)
    assert torch.get_num_threads() == threads  # the process-wide setting is put back
    text = result.describe()
    assert "over 3 runs after 1 warm-up" in text and "batch 2" in text and "1 thread" in text
    assert result.engine.startswith("ONNX Runtime") and result.engine in text  # the engine that classifies
    first, third = result.quartiles_ms
    assert min(result.samples_ms) <= first <= result.median_ms <= third <= max(result.samples_ms)
    assert f"IQR {first:.1f}-{third:.1f}" in text
    summary = summarise(NamedConfig("tiny", tiny), result)
    assert summary.as_row()["latency_batch_size"] == 2
    with pytest.raises(ValueError, match="runs"):
        LatencySettings(runs=0)


def test_sweep_rows_from_two_dask_workers_equal_the_single_config_analysis():
    points = grid([1.0, 0.35], [96], [6, 3])
    rows = {row["name"]: row for row in run([point.config(ArchSpec()) for point in points], workers=2)}
    assert len(rows) == 4
    for point in points:
        config = point.config(ArchSpec())
        row = rows[config.name]
        summary = summarise(config)
        assert (row["params"], row["madds_paper"], row["madds_fvcore"]) == (
            summary.params, summary.madds_paper, summary.madds_fvcore
        )
        assert row["params"] == analyse(config.spec).params
        assert ArchSpec.from_json(row["spec"]) == config.spec
    t3 = ArchSpec.from_json(rows["1.0/96 t=3"]["spec"])
    assert [stage.t for stage in t3.stages] == [1, 3, 3, 3, 3, 3, 3]  # the t = 1 row stays 1
    assert all(row["latency_median_ms"] is None and row["top1"] is None for row in rows.values())  # not asked for


def test_configurations_are_timed_in_interleaved_rounds():
    """Each round runs every configuration once, each round starting one later."""
    order: list[str] = []

    class Named(torch.nn.Module):
        def __init__(self, name: str):
            super().__init__()
            self.name = name

        def forward(self, x):
            order.append(self.name)
            return x

    settings = LatencySettings(runs=2, warmup=1, threads=1)
    results = measure_models([(Named("a"), 8), (Named("b"), 8), (Named("c"), 8)], settings)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert [len(result.samples_ms) for result in results] == [2, 2, 2]
    assert results[0].engine.startswith("PyTorch") and results[0].engine.endswith("eager")


def test_the_default_is_all_cores_and_a_wide_spread_is_a_warning():
    assert LatencySettings().threads == available_cores()
    steady = LatencyResult(LatencySettings(runs=8), (10.0, 10.1, 10.2, 10.0, 10.3, 10.1, 10.2, 10.0), "here")
    busy = LatencyResult(LatencySettings(runs=8), (10.0, 22.0, 10.5, 35.0, 11.0, 48.0, 10.2, 30.0), "here")
    assert steady.warning is None
    assert busy.warning.startswith("The runs spread widely (IQR") and "the machine was busy" in busy.warning
    assert steady.iqr_ms < 0.3 < 15 < busy.iqr_ms


def test_two_interleaved_measurements_at_once_leave_the_thread_count_as_it_was():
    """Building each configuration's engine (ONNX Runtime's pool for the measurement's threads) sets nothing
    process-wide, and the timing itself runs one measurement at a time."""
    import threading

    from mbv2.latency import measure_specs

    before = torch.get_num_threads()
    tiny = [ArchSpec(width_mult=0.35, resolution=64), ArchSpec(width_mult=0.35, resolution=96)]
    results: dict[int, list] = {}
    workers = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, measure_specs(tiny, LatencySettings(2, 1, 1, n))))
        for n in (1, 2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert torch.get_num_threads() == before
    assert [result.settings.threads for result in results[1] + results[2]] == [1, 1, 2, 2]
    assert all(result.engine.startswith("ONNX Runtime") for result in results[1] + results[2])
