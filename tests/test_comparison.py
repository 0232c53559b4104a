"""Saved comparisons: named architectures and their measured latencies, written and read back."""

import json

import pytest

from mbv2.compare import NamedConfig, preset
from mbv2.comparison import Comparison
from mbv2.errors import ComparisonFileError
from mbv2.latency import LatencySettings, measure_spec
from mbv2.spec import ArchSpec


def test_a_comparison_with_a_real_measurement_comes_back_equal():
    small = preset(0.35, 96)
    measured = measure_spec(small.spec, LatencySettings(runs=3, warmup=1))
    saved = Comparison((NamedConfig("mine", ArchSpec(width_mult=0.75, padding="tf_same")), small),
                       ((small.spec, measured),))
    loaded = Comparison.from_json(saved.to_json())
    assert loaded == saved
    assert loaded.latencies[0][1].median_ms == measured.median_ms > 0


def test_a_comparison_saved_before_the_rename_with_blocks_still_loads():
    small = preset(0.35, 96)
    saved = json.loads(Comparison((small,), ()).to_json())
    for config in saved["configs"]:  # as written when the table's field was called blocks
        config["spec"]["blocks"] = config["spec"].pop("stages")
    assert Comparison.from_json(json.dumps(saved)).configs == (small,)


BAD_FILES = {
    "not json": ("{", "This file is not readable JSON"),
    "a spec, not a comparison": (ArchSpec().to_json(), "loaded in the Architecture view"),
    "configs not a list": (json.dumps({"format": "mbv2-comparison", "configs": {}}), '"configs" in the comparison '
                           "file must be a list, got dict."),
    "missing name": (json.dumps({"format": "mbv2-comparison", "configs": [{"spec": {}}]}),
                     "Entry 1 of \"configs\" cannot be read: the field 'name' is missing"),
    "bad stride": (json.dumps({"format": "mbv2-comparison", "configs": [
        {"name": "x", "spec": {"stages": [{"t": 1, "c": 16, "n": 1, "s": 3}]}}]}),
        'Entry 1 of "configs" cannot be read: Row 1: stride s must be 1 or 2, got 3.'),
    "no runs": (json.dumps({"format": "mbv2-comparison", "latencies": [
        {"spec": {}, "settings": {}, "samples_ms": [], "machine": "cpu"}]}),
        'Entry 1 of "latencies" cannot be read: it holds no timed runs'),
}


@pytest.mark.parametrize("text, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_says_what_is_wrong_where(text, message):
    with pytest.raises(ComparisonFileError) as raised:
        Comparison.from_json(text)
    assert message in str(raised.value)
