"""The architecture view, driven as a user would: edit the table, break it, change width and resolution.

Expected numbers come from the fvcore counts the library tests check against the paper and TF-slim.
"""

import json

import pytest

from conftest import PAPER_PARAMS, app_test, edit_table, metrics
from mbv2.spec import ArchSpec

PAPER_MADDS = "300.8M"


def button(at, label: str):
    return next(button for button in at.button if button.label == label)


@pytest.fixture
def at():
    app = app_test(view="architecture").run()
    assert not app.exception
    return app


def test_the_paper_default_is_shown_with_exact_totals(at):
    assert metrics(at) == {
        "Multiply-adds": PAPER_MADDS,
        "Parameters": PAPER_PARAMS,
        "Inverted residual blocks": "17",
        "Last feature map": "7×7×1280",
    }
    madds = next(metric for metric in at.metric if metric.label == "Multiply-adds")
    assert "300,774,272" in madds.proto.help
    assert at.data_editor[0].value[["t", "c", "n", "s"]].values.tolist()[1] == [6, 24, 2, 2]
    layers = next(frame.value for frame in at.dataframe if frame.editing_mode == "read_only")
    assert len(layers) == 54  # stem, 17 blocks (the first without expansion), last conv, pool, classifier
    assert layers["params"].sum() == 3_504_872
    assert layers["MAdds"].sum() == 300_774_272
    assert layers.iloc[3].to_dict() | {"share": None} == {
        "layer": "b2", "table row": "row 2", "kind": "expand", "input": "112×112×16", "output": "112×112×96",
        "params": 1_728, "MAdds": 19_267_584, "share": None,
    }


def test_editing_a_row_changes_the_totals_and_the_link(at):
    edit_table(at, edited_rows={6: {"c": 640}})
    assert metrics(at)["Multiply-adds"] == "335.9M"
    assert metrics(at)["Parameters"] == "4,222,312"
    deltas = {metric.label: metric.proto.delta for metric in at.metric}
    assert deltas["Multiply-adds"] == "+12% vs the paper"
    assert at.query_params["stages"] == "1-16-1-1,6-24-2-2,6-32-3-2,6-64-4-2,6-96-3-1,6-160-3-2,6-640-1-1"


def test_an_invalid_table_shows_every_problem_and_keeps_the_last_valid_totals(at):
    edit_table(at, edited_rows={6: {"c": 640}})
    edit_table(at, edited_rows={6: {"c": 640}, 1: {"s": 3}, 2: {"t": 40}})
    assert not at.exception
    [error] = at.error
    assert "Row 2: stride s must be 1 or 2, got 3." in error.value
    assert "Row 3: expansion t must be between 1 and 32, got 40. The paper uses 1 or 6." in error.value
    assert metrics(at)["Parameters"] == "4,222,312"  # the last valid architecture, not the paper's
    assert at.query_params["stages"].endswith("6-640-1-1")

    at.selectbox(key="stages_table_move").set_value(7)
    button(at, "Add row").click().run()  # row 8: a copy of row 7, no empty cell
    assert at.data_editor[0].value[["t", "c", "n", "s"]].values.tolist()[7] == [6, 640, 1, 1]
    assert "Row 8" not in at.error[0].value  # the table is kept as typed: rows 2 and 3 are still wrong
    edit_table(at, edited_rows={6: {"c": 640}, 7: {"c": None}})
    assert "Row 8: channels c is empty; type a whole number." in at.error[0].value
    assert metrics(at)["Parameters"] == "4,222,312"


def test_width_and_resolution_change_the_totals(at):
    at.number_input(key="width_mult").set_value(0.5).run()
    assert metrics(at)["Multiply-adds"] == "97.1M"  # TF-slim publishes 97M and 1.95M (no BatchNorm, 1001 classes)
    assert metrics(at)["Parameters"] == "1,968,680"
    at.number_input(key="resolution").set_value(160).run()
    assert metrics(at)["Multiply-adds"] == "50.2M"
    assert metrics(at)["Parameters"] == "1,968,680"
    assert metrics(at)["Last feature map"] == "5×5×1280"
    assert (at.query_params["width"], at.query_params["res"]) == ("0.5", "160")


def test_the_fvcore_convention_also_counts_batchnorm_and_pooling(at):
    at.radio(key="madds_convention").set_value("fvcore").run()
    assert metrics(at)["Multiply-adds"] == "314.2M"


def test_rows_move_and_the_paper_comes_back_on_reset(at):
    at.selectbox(key="stages_table_move").set_value(7)  # in the table's form: taken with the button
    button(at, "Up").click().run()  # rows 6 and 7 swap
    assert at.data_editor[0].value["c"].tolist() == [16, 24, 32, 64, 96, 320, 160]
    assert metrics(at)["Parameters"] == "3,865,512"
    assert at.selectbox(key="stages_table_move").value == 6  # the moved row stays selected
    at.number_input(key="resolution").set_value(160).run()
    button(at, "Reset to the paper's Table 2").click().run()
    assert metrics(at)["Multiply-adds"] == PAPER_MADDS
    assert at.data_editor[0].value["c"].tolist() == [16, 24, 32, 64, 96, 160, 320]
    assert at.number_input(key="resolution").value == 224
    assert "stages" not in at.query_params  # the paper's architecture needs no parameters in the link


def test_edits_typed_before_another_button_are_applied_with_it(at):
    at.session_state[at.data_editor[0].key] = {
        "edited_rows": {"1": {"c": 40}, "6": {"delete": True}}, "added_rows": [], "deleted_rows": []
    }  # as the browser sends them: row numbers as text
    at.selectbox(key="stages_table_move").set_value(2)
    button(at, "Add row").click().run()
    assert not at.exception and not at.error
    table = at.data_editor[0].value
    assert table[["t", "c", "n", "s"]].values.tolist()[1:3] == [[6, 40, 2, 2], [6, 40, 2, 2]]  # the copy as typed
    assert table["c"].tolist() == [16, 40, 40, 32, 64, 96, 160] and not table["delete"].any()
    assert at.query_params["stages"] == "1-16-1-1,6-40-2-2,6-40-2-2,6-32-3-2,6-64-4-2,6-96-3-1,6-160-3-2"
    assert at.selectbox(key="stages_table_move").value == 3  # the new row is the chosen one


def test_a_link_reproduces_an_architecture():
    at = app_test(view="architecture", stages="1-16-1-1,6-24-2-2", width="0.75", res="160").run()
    assert metrics(at)["Parameters"] == "1,329,624"
    assert metrics(at)["Multiply-adds"] == "86.5M"
    assert at.data_editor[0].value["c"].tolist() == [16, 24]


def test_an_old_link_with_blocks_shows_its_architecture_and_is_rewritten_with_stages():
    at = app_test(view="architecture", blocks="1-16-1-1,6-24-2-2", width="0.75", res="160").run()
    assert not at.exception and not at.warning
    assert metrics(at)["Parameters"] == "1,329,624"
    assert at.data_editor[0].value["c"].tolist() == [16, 24]
    assert "blocks" not in at.query_params  # shared on in the new form
    assert at.query_params["stages"] == "1-16-1-1,6-24-2-2"


def test_a_broken_link_says_why_and_shows_the_paper():
    at = app_test(view="architecture", stages="6-24-2-9").run()
    assert not at.exception
    assert "Row 1: stride s must be 1 or 2, got 9." in at.warning[0].value
    assert metrics(at)["Multiply-adds"] == PAPER_MADDS


def test_time_per_layer_is_measured_on_a_click_and_charted_beside_the_multiply_adds():
    at = app_test(view="architecture", width="0.5", res="128").run()
    assert not at.get("plotly_chart")[2:]  # the counts' two charts; nothing is timed until asked
    at.button(key="layer_time_measure").click().run()
    assert not at.exception and not at.error
    figure = json.loads(at.get("plotly_chart")[-1].proto.spec)
    madds, time = figure["data"]
    assert madds["x"] == time["x"] == ["stem", "expand", "depthwise", "project", "head"]
    assert sum(madds["y"]) == pytest.approx(1) and sum(time["y"]) == pytest.approx(1)
    depthwise = madds["x"].index("depthwise")
    assert time["y"][depthwise] > 2 * madds["y"][depthwise]  # little arithmetic, much of the time
    caption = " ".join(caption.value for caption in at.caption)
    assert f"Depthwise convolutions: {madds['y'][depthwise]:.0%} of the multiply-adds" in caption
    at.run()
    assert len(at.get("plotly_chart")) == 3  # kept for this design in this session, not measured again


def test_a_downloaded_spec_loads_back_and_a_bad_file_says_why(at):
    spec = ArchSpec(width_mult=0.5, resolution=128, padding="tf_same")
    at.file_uploader(key="spec_import").upload("mobilenet_v2_0.5_128.json", spec.to_json().encode(), "application/json")
    at.run()
    assert not at.exception and not at.error
    assert metrics(at)["Parameters"] == "1,968,680"
    assert at.number_input(key="width_mult").value == 0.5 and at.number_input(key="resolution").value == 128
    assert at.query_params["width"] == "0.5" and at.query_params["res"] == "128"

    bad = '{"stages": [{"t": 6, "c": 24, "n": 2, "s": 3}], "width_mult": 0.5}'
    at.file_uploader(key="spec_import").upload("mine.json", bad.encode(), "application/json").run()
    assert not at.exception
    assert "mine.json cannot be loaded" in at.error[0].value and "stride s must be 1 or 2, got 3" in at.error[0].value
    assert metrics(at)["Parameters"] == "1,968,680"  # the loaded architecture stays


def test_presentation_mode_is_kept_in_the_link():
    at = app_test(view="architecture", present="1").run()
    assert at.toggle(key="presentation").value
    assert any("html { font-size: 20px; }" in element.proto.body for element in at.get("html"))
    at.toggle(key="presentation").set_value(False).run()
    assert "present" not in at.query_params and not at.get("html")
