"""Per-layer time beside multiply-adds: measured on this CPU for the paper's 1.0/224."""

import pytest

from mbv2.analysis import analyse
from mbv2.latency import LatencySettings
from mbv2.layertime import KINDS, profile_layers
from mbv2.spec import ArchSpec


@pytest.fixture(scope="module")
def profile():
    calls = []
    result = profile_layers(ArchSpec(), LatencySettings(runs=5, warmup=1), lambda done, total: calls.append(done))
    assert calls == list(range(1, 13))  # the hooked runs, then the bare ones, warm-up included
    return result


def test_every_layer_is_timed_and_its_multiply_adds_are_the_analysis(profile):
    analysis = analyse(ArchSpec())
    assert [layer.row for layer in profile.layers] == [row for row in analysis.rows if row.kind != "pool"]
    assert all(layer.median_ms > 0 for layer in profile.layers)
    kinds = profile.kinds()
    assert [kind.kind for kind in kinds] == list(KINDS)
    assert sum(kind.madds for kind in kinds) == analysis.madds("paper") == 300_774_272
    assert sum(kind.time_share for kind in kinds) == pytest.approx(1)
    assert 0 <= profile.unattributed_ms < profile.hooked.median_ms


def test_depthwise_takes_far_more_of_the_time_than_of_the_multiply_adds(profile):
    depthwise = next(kind for kind in profile.kinds() if kind.kind == "depthwise")
    assert depthwise.madds == 20_716_416 and depthwise.madds_share == pytest.approx(0.0689, abs=1e-4)
    assert depthwise.time_share > 2 * depthwise.madds_share  # measured about 30% on 2 cores, shared or not
