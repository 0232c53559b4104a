"""fvcore's counts against the published MobileNetV2 figures and the paper's closed form."""

import warnings

import pytest

from mbv2.analysis import LAYER_KINDS, analyse, paper_bottleneck_madds
from mbv2.cost import bottleneck_madds
from mbv2.model import build_model
from mbv2.spec import ArchSpec, Stage


def test_totals_for_the_default_spec():
    analysis = analyse(ArchSpec())
    assert analysis.params == 3_504_872
    assert analysis.madds("paper") == 300_774_272  # the paper's "300M"
    assert analysis.madds("fvcore") == 314_193_216  # + BatchNorm (13.4M) and pooling (62,720)


def _params_without_batchnorm(spec: ArchSpec) -> int:
    return sum(p.numel() for name, p in build_model(spec).named_parameters() if p.dim() > 1 or "classifier" in name)


# TF-slim's published table (research/slim/nets/mobilenet/README.md): MACs in millions, params in millions.
TF_SLIM = [
    (1.0, 224, 300, 3.47),
    (1.0, 192, 221, 3.47),
    (1.0, 160, 154, 3.47),
    (1.0, 128, 99, 3.47),
    (1.0, 96, 56, 3.47),
    (0.75, 224, 209, 2.61),
    (0.5, 224, 97, 1.95),
    (0.35, 224, 59, 1.66),
]


@pytest.mark.parametrize("width, resolution, published_macs, published_params", TF_SLIM)
def test_within_one_percent_of_tf_slim(width, resolution, published_macs, published_params):
    spec = ArchSpec(width_mult=width, resolution=resolution)
    assert analyse(spec).madds("paper") / 1e6 == pytest.approx(published_macs, rel=0.01)
    # TF-slim counts the weights of convolutions and the classifier, with BatchNorm folded away
    # (so no BatchNorm parameters), and a 1001-class head (a background class): +1,281 params
    # over our 1000 classes, which is why we add it before comparing.
    tf_head_extra = spec.last_out + 1
    assert (_params_without_batchnorm(spec) + tf_head_extra) / 1e6 == pytest.approx(published_params, rel=0.01)


def test_rows_cover_every_layer_in_order():
    analysis = analyse(ArchSpec())
    kinds = [row.kind for row in analysis.rows]
    assert kinds[0] == "stem" and kinds[-3:] == ["last conv", "pool", "classifier"]
    assert kinds.count("depthwise") == kinds.count("project") == 17
    assert kinds.count("expand") == 16  # the first block has t = 1
    assert set(kinds) == set(LAYER_KINDS)
    assert sum(row.params for row in analysis.rows) == sum(p.numel() for p in build_model(ArchSpec()).parameters())
    for before, after in zip(analysis.rows[:-1], analysis.rows[1:]):
        assert before.output_shape[1] == after.input_shape[1]  # channels flow from layer to layer
    assert analysis.rows[0].output_shape == (1, 32, 112, 112)
    assert analysis.rows[-1].output_shape == (1, 1000)


def test_paper_convention_leaves_out_batchnorm_and_pooling():
    rows = {row.kind: row for row in analyse(ArchSpec()).rows}
    assert rows["pool"].madds_paper == 0 and rows["pool"].madds_fvcore == 1280 * 7 * 7
    assert rows["classifier"].madds_paper == rows["classifier"].madds_fvcore == 1280 * 1000
    stem = rows["stem"]
    assert stem.madds_paper == 112 * 112 * 32 * 27
    assert stem.madds_fvcore - stem.madds_paper == 112 * 112 * 32 * 2  # BatchNorm: fvcore counts 2 per element


def test_paper_closed_form_matches_fvcore_per_block():
    spec = ArchSpec(stages=(Stage(1, 16, 1, 1), Stage(6, 24, 2, 2), Stage(6, 32, 3, 1), Stage(4, 40, 2, 2)))
    analysis = analyse(spec)
    per_block: dict[int, int] = {}
    for row in analysis.rows:
        if row.kind in ("expand", "depthwise", "project"):
            per_block[row.block] = per_block.get(row.block, 0) + row.madds_paper
    for index, (plan, side) in enumerate(zip(spec.block_plans, spec.feature_sizes()), start=1):
        assert bottleneck_madds(plan, side) == per_block[index]
        if plan.stride == 1 and plan.has_expansion:
            assert paper_bottleneck_madds(side, side, plan.in_channels, plan.out_channels, plan.expansion) == per_block[index]


def test_no_fvcore_warnings_or_logs_reach_the_user(capfd, caplog):
    analyse.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analyse(ArchSpec(resolution=160, padding="tf_same"))
    assert caught == []
    assert capfd.readouterr().err == "" and caplog.records == []


def test_analysis_is_cached():
    assert analyse(ArchSpec(width_mult=0.5)) is analyse(ArchSpec(width_mult=0.5))


def test_a_blocks_rows_carry_its_plan_and_the_others_none():
    spec = ArchSpec()
    for row in analyse(spec).rows:
        if row.kind in ("expand", "depthwise", "project"):
            assert row.plan == spec.block_plans[row.block - 1] and row.plan.stage == row.stage
        else:
            assert row.plan is None
