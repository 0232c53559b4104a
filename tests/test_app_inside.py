"""The "Inside a block" view under AppTest, with the shared TF weights and the sample photos."""

from __future__ import annotations

import json

import pytest

from conftest import app_test

SHAPE = "(N×C×H×W"


@pytest.fixture(scope="module")
def at():
    """One app, run once; the tests below move its widgets in order, as a student would."""
    app = app_test(view="inside-a-block").run()
    assert not app.exception, app.exception
    return app


def _captions(at) -> list[str]:
    return [caption.value for caption in at.caption]


def _shapes(at) -> list[str]:
    """The tensor shapes, from the captions' tooltips (plain words in the caption, the jargon in its help)."""
    helps = [caption.proto.help for caption in at.caption]
    return [text.split(" (N×C×H×W")[0].removeprefix("Tensor shape ") for text in helps if SHAPE in text]


def test_the_five_tensors_of_the_default_block(at):
    assert at.selectbox(key="inside_block").value == 3
    assert _shapes(at) == ["1×24×56×56", "1×144×56×56", "1×144×56×56", "1×24×56×56", "1×24×56×56"]
    assert len(at.get("plotly_chart")) >= 5
    assert not at.error


def test_the_statistics_table_has_one_row_per_stage(at):
    table = at.dataframe[0].value
    assert list(table["stage"]) == list(range(1, 8))
    assert table["expansion: zero"].isna().tolist() == [True] + [False] * 6
    assert table["projection: negative values"].between(0.4, 0.6).all()


def test_a_block_without_expansion_or_residual_says_so(at):
    at.selectbox(key="inside_block").set_value(1).run()
    infos = " ".join(info.value for info in at.info)
    assert "No expansion layer: t = 1" in infos
    assert "No residual" in infos
    assert _shapes(at) == ["1×32×112×112", "1×32×112×112", "1×16×112×112"]


def test_a_stride_two_block_halves_the_map(at):
    at.selectbox(key="inside_block").set_value(14).run()
    assert _shapes(at) == ["1×96×14×14", "1×576×14×14", "1×576×7×7", "1×160×7×7"]
    assert "the stride is 2" in " ".join(info.value for info in at.info)


def test_the_ablation_toggle_shows_the_damage(at):
    assert not at.metric  # nothing to compare until the switch is on
    at.toggle(key="inside_ablation").set_value(True).run()
    assert not at.exception
    assert any("loses its top class (Egyptian cat →" in text for text in _captions(at))
    assert at.text_input(key="inside_ablation_images").value.endswith("imagenet-dev")  # MBV2_IMAGENET
    at.button(key="inside_ablation_measure").click().run()
    assert not at.exception and not at.error
    # On the 50 labelled dev images: 84% as trained; both the ReLU6 and the control of the same size break it.
    assert {metric.label: metric.value for metric in at.metric} == {
        "As trained (linear bottleneck)": "84%", "ReLU6 after every projection": "0%",
        "Control: the same damage elsewhere": "0%",
    }


def test_the_manifold_slider(at):
    assert any("Black crosses mark the 46% of points" in text for text in _captions(at))
    at.slider(key="inside_manifold_n").set_value(30).run()
    assert any("Black crosses mark the 0% of points" in text for text in _captions(at))


def test_another_sample_image(at):
    at.selectbox(key="sample").set_value("rocket").run()
    assert not at.exception and not at.error
    assert any("loses its top class (missile →" in text for text in _captions(at))


def test_an_edited_architecture_is_looked_inside_with_inherited_weights():
    at = app_test(view="inside-a-block", stages="1-16-1-1,4-24-2-2,6-32-3-2,6-64-4-2,6-96-3-1,6-160-3-2,6-320-1-1",
                  res="160").run()
    assert not at.exception and not at.error
    assert _shapes(at) == ["1×24×40×40", "1×96×40×40", "1×96×40×40", "1×24×40×40", "1×24×40×40"]  # t = 4 at 160
    note = " ".join(_captions(at))
    assert "your edited architecture (table row 2; resolution 160 instead of 224)" in note
    assert "inherited from local mobilenet_v2_1.0_224_tf2_ptq.pth, no training" in note and "sliced" in note


def test_tensors_are_drawn_to_scale_and_can_share_one_colour_scale(at):
    at.selectbox(key="inside_block").set_value(3).run()
    captions = [text for text in _captions(at) if " channels of " in text]
    assert [text.split(". ")[-1].split(" shown")[0] for text in captions] == [
        "24 channels of 56×56 values, 4", "144 channels of 56×56 values, 24", "144 channels of 56×56 values, 24",
        "24 channels of 56×56 values, 4", "24 channels of 56×56 values, 4",
    ]
    own = [chart.proto.spec for chart in at.get("plotly_chart")[:5]]
    at.toggle(key="inside_shared_scale").set_value(True).run()
    shared = [json.loads(chart.proto.spec)["data"][0]["zmax"] for chart in at.get("plotly_chart")[:5]]
    assert len(set(shared)) == 1 and len({json.loads(spec)["data"][0]["zmax"] for spec in own}) > 1
    assert any("All pictures share one colour scale." in text for text in _captions(at))
