"""The Compare view in AppTest: the list of configurations, latency on demand, the plot, the exports."""

import gc
import json

import pandas as pd
import pytest

from conftest import DEV_IMAGES, SAMPLE_IMAGES, WEIGHTS_JSON, app_test, metrics
from mbv2.cli import main
from mbv2.compare import NamedConfig, preset
from mbv2.comparison import Comparison
from mbv2.latency import LatencySettings, measure_spec
from mbv2.spec import ArchSpec

PAPER_LINK = ["1-16-1-1,6-24-2-2,6-32-3-2,6-64-4-2,6-96-3-1,6-160-3-2,6-320-1-1", "1.0", "224", "tf_same"]


@pytest.fixture(scope="module")
def at():
    return app_test(view="compare").run()


def _names(at) -> list[str]:
    return list(at.dataframe[0].value["Configuration"])


def test_starts_with_the_current_design_and_its_published_point(at):
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert _names(at) == ["MobileNetV2 1.0/224"]  # the paper's architecture is the 1.0/224 preset
    row = table.iloc[0]
    assert row["Params (M)"] == pytest.approx(3.504872)
    assert row["MAdds paper (M)"] == pytest.approx(300.774272) and row["MAdds fvcore (M)"] == pytest.approx(314.193216)
    assert row["Peak act. (MiB)"] == pytest.approx(6_021_120 / 2**20)
    assert row["TF-slim published"] == "300M · 3.47M · 71.8% · 73.8 ms"
    assert table["Latency (ms)"].isna().all()  # nothing is timed until asked
    assert "research/slim/nets/mobilenet/README.md" in " ".join(caption.value for caption in at.caption)
    assert len(at.get("plotly_chart")) == 1


def test_presets_and_named_designs_are_added_and_removed(at):
    at.multiselect(key="compare_presets").select("MobileNetV2 0.35/96").select("MobileNetV2 0.5/128").run()
    at.button(key="compare_add_presets").click().run()
    assert _names(at) == ["MobileNetV2 1.0/224", "MobileNetV2 0.35/96", "MobileNetV2 0.5/128"]
    assert at.multiselect(key="compare_presets").value == []
    at.text_input(key="compare_new_name").input("baseline copy").run()
    at.button(key="compare_add_current").click().run()
    assert _names(at)[-1] == "baseline copy"
    at.text_input(key="compare_new_name").input("baseline copy").run()
    assert at.button(key="compare_add_current").disabled  # a name is used once
    at.multiselect(key="compare_remove").select("baseline copy").select("MobileNetV2 1.0/224").run()
    at.button(key="compare_remove_button").click().run()
    assert _names(at) == ["MobileNetV2 0.35/96", "MobileNetV2 0.5/128"]
    assert not at.exception


def test_latency_is_measured_on_demand_and_kept(at):
    at.number_input(key="compare_runs").set_value(2).run()
    measure = at.button(key="compare_measure")
    assert measure.label == "Measure latency (2 to go)"
    measure.click().run()
    table = at.dataframe[0].value
    latencies = table["Latency (ms)"]
    assert latencies.notna().all() and (latencies > 0).all()
    for median, iqr in zip(latencies, table["Latency IQR (ms)"]):  # the spread beside each median
        first, third = (float(value) for value in iqr.split("–"))
        assert first <= round(median, 1) + 0.05 and round(median, 1) - 0.05 <= third
    assert at.button(key="compare_measure").label == "All measured" and at.button(key="compare_measure").disabled
    captions = " ".join(caption.value for caption in at.caption)
    assert "Latency: ONNX Runtime " in captions and "the engine that classifies" in captions
    assert "timed together, in interleaved rounds" in captions
    at.segmented_control(key="compare_axis").set_value("Latency (ms)").run()
    figure = at.get("plotly_chart")[0].proto.spec
    assert "TF-slim published (Pixel 1 latency)" in figure and "Your configurations (this CPU)" in figure
    assert not at.exception


def test_a_busy_machine_is_named_beside_the_times(monkeypatch):
    import mbv2.latency

    monkeypatch.setattr(mbv2.latency, "BUSY_SPREAD", -1.0)  # any spread at all counts as busy
    at = app_test(view="compare").run()
    at.number_input(key="compare_runs").set_value(3).run()
    at.button(key="compare_measure").click().run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["Latency (ms)"].notna().all()
    warnings = " ".join(warning.value for warning in at.warning)
    assert "The machine was busy while timing MobileNetV2 1.0/224" in warnings and "measure again" in warnings


def test_exports_are_prepared_then_offered_for_download(at):
    at.selectbox(key="compare_export_name").select("MobileNetV2 0.35/96").run()
    assert _export_buttons(at) == ["Spec (JSON)"]
    at.button(key="compare_prepare").click().run()
    assert _export_buttons(at) == ["Spec (JSON)", "TorchScript (.pt)", "Root operators (YAML)", "ONNX"]
    assert not at.exception and not at.error


def test_accuracy_is_measured_with_inherited_weights_and_plotted_against_cost():
    at = app_test(view="compare").run()
    at.multiselect(key="compare_presets").select("MobileNetV2 0.75/224").run()
    at.button(key="compare_add_presets").click().run()
    assert at.button(key="compare_score").label == "Measure top-1 (2 to go)"
    at.button(key="compare_score").click().run()
    assert not at.exception and not at.error
    top1 = dict(zip(_names(at), at.dataframe[0].value["Top-1 (%)"]))
    assert top1["MobileNetV2 1.0/224"] == pytest.approx(84.0)  # 42 of the 50 dev images, as trained
    assert 0 <= top1["MobileNetV2 0.75/224"] < top1["MobileNetV2 1.0/224"]  # sliced, not trained
    figure = at.get("plotly_chart")[0].proto.spec
    assert "TF-slim published (trained)" in figure and "Your configurations (inherited weights, no training)" in figure
    captions = " ".join(caption.value for caption in at.caption)
    assert "measured with inherited weights, no training, on 50 images from" in captions
    assert "score top-1 84.0%" in captions  # the weights in use, measured once

    at.button(key="compare_importance").click().run()
    assert not at.exception and not at.error
    bars = at.get("plotly_chart")[-1].proto.spec
    assert "row 4, block 2" in bars and "residual block removed" in bars


def test_distillation_runs_live_and_its_weights_join_every_picker():
    at = app_test(view="compare").run()
    at.multiselect(key="compare_presets").select("MobileNetV2 0.75/224").run()
    at.button(key="compare_add_presets").click().run()
    at.selectbox(key="recover_name").set_value("MobileNetV2 0.75/224").run()
    at.number_input(key="recover_steps").set_value(10).run()
    at.button(key="recover_start").click().run()
    assert not at.exception and not at.error
    values = metrics(at)
    assert "Top-1, inherited" in values and "Top-1, distilled" in values
    captions = " ".join(caption.value for caption in at.caption)
    assert "10 steps in" in captions and "_distilled.pth" in captions
    assert "Stars: the same configurations after distillation" in captions
    assert any(name.endswith("_distilled.pth") for name in at.selectbox(key="compare_weights").options)


def test_a_batch_too_large_for_the_design_is_explained_and_a_smaller_one_is_measured():
    at = app_test(view="compare", width="0.35", res="1024").run()
    at.number_input(key="compare_runs").set_value(1).run()
    at.number_input(key="compare_batch").set_value(64).run()
    at.button(key="compare_measure").click().run()
    assert not at.exception
    [error] = at.error
    assert "A batch of 64 images of this design would need about 18.0 GiB of feature maps; the limit is 4.0 GiB. " \
           "Use a batch of at most 14" in error.value
    at.number_input(key="compare_batch").set_value(1).run()
    at.button(key="compare_measure").click().run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["Latency (ms)"].notna().all()


def _export_buttons(at) -> list[str]:
    """The export section's download buttons (the list's own Save button is another)."""
    return [button.proto.label for button in at.get("download_button") if button.key.startswith("compare_download")]


def _export(at, name: str) -> None:
    at.selectbox(key="compare_export_name").select(name).run()
    at.button(key="compare_prepare").click().run()
    assert len(_export_buttons(at)) == 4


def _large_files_held() -> int:
    """Byte strings above 10 MB that some live object holds (a model file, not the app's own data)."""
    containers = (obj for obj in gc.get_objects() if isinstance(obj, (dict, list, tuple)))
    return sum(
        isinstance(item, bytes) and len(item) > 10**7
        for container in containers
        for item in (container.values() if isinstance(container, dict) else container)
    )


def test_exported_files_go_when_the_session_goes():
    """A visitor exports a large design (two files of about 45 MB) and leaves: the server keeps none of it."""
    gc.collect()
    assert _large_files_held() == 0
    at = app_test(view="compare", width="2.0", res="96").run()
    _export(at, "My design 1 (2.0/96)")
    assert _large_files_held() == 2  # the TorchScript and ONNX files, held by the session that asked
    del at
    gc.collect()
    assert _large_files_held() == 0


@pytest.fixture(scope="module")
def scored_sweep(tmp_path_factory) -> bytes:
    """The JSON lines `mbv2 sweep` writes for two widths, top-1 measured on 10 dev images with inherited weights."""
    out = tmp_path_factory.mktemp("sweep") / "grid.jsonl"
    assert main(["sweep", "--widths", "0.5", "0.75", "--resolutions", "96", "--workers", "1", "--out", str(out),
                 "--images", str(DEV_IMAGES), "--limit", "10", "--weights", str(WEIGHTS_JSON),
                 "--calibration", str(SAMPLE_IMAGES)]) == 0
    return out.read_bytes()


def test_a_sweep_file_is_plotted_on_the_accuracy_cost_plot(scored_sweep):
    at = app_test(view="compare").run()
    at.file_uploader(key="compare_sweep").upload("grid.jsonl", scored_sweep, "application/octet-stream").run()
    assert not at.exception and not at.error
    rows = {row["name"]: row for row in map(json.loads, scored_sweep.decode().splitlines())}
    figure = json.loads(at.get("plotly_chart")[-1].proto.spec)
    points = next(trace for trace in figure["data"] if trace["name"].startswith("Your configurations"))
    plotted = dict(zip(points["text"], zip(points["x"], points["y"])))
    assert plotted == {name: (row["madds_paper"] / 1e6, row["top1"]) for name, row in rows.items()}
    assert plotted["0.75/96 t=6"] == (pytest.approx(39.445472), 20.0)  # 2 of 10 dev images, no training
    assert any(trace["name"] == "TF-slim published (trained)" for trace in figure["data"])
    assert "2 of the 2 configurations in grid.jsonl have an accuracy" in " ".join(c.value for c in at.caption)


BAD_SWEEP_FILES = {  # id: (file name, content, what the message says)
    "not a sweep": ("other.csv", b"a,b\n1,2\n", "other.csv has no column name, params, madds_paper, spec"),
    "not a number": ("grid.jsonl", b'{"name": "x", "params": "many", "madds_paper": 1, "spec": "{}"}\n',
                     "Line 1 of grid.jsonl: params must be a number, got 'many'."),
    "not json": ("grid.jsonl", b"{oops\n", "Line 1 of grid.jsonl: Not valid JSON"),
    "empty": ("grid.csv", b"", "grid.csv holds no rows yet."),
    "binary": ("grid.csv", b"\xff\xfe\x00", "grid.csv is not UTF-8 text"),
}


@pytest.mark.parametrize("name, content, message", BAD_SWEEP_FILES.values(), ids=BAD_SWEEP_FILES.keys())
def test_a_bad_sweep_file_gets_a_message_not_a_traceback(name, content, message):
    at = app_test(view="compare").run()
    at.file_uploader(key="compare_sweep").upload(name, content, "text/csv").run()
    assert not at.exception
    assert [message in error.value for error in at.error] == [True]


def test_a_sweep_without_accuracy_says_how_to_measure_it(tmp_path):
    out = tmp_path / "counts.csv"
    assert main(["sweep", "--widths", "0.35", "--resolutions", "96", "--workers", "1", "--out", str(out)]) == 0
    at = app_test(view="compare").run()
    at.file_uploader(key="compare_sweep").upload("counts.csv", out.read_bytes(), "text/csv").run()
    assert not at.exception and not at.error
    assert "holds 1 configurations but no accuracy: run the sweep again with --images DIR" in at.warning[0].value


def test_a_link_restores_the_list_and_follows_its_changes():
    link = json.dumps([["tiny", "1-16-1-1,6-24-2-2", "0.5", "128", "tf_same"], ["paper", *PAPER_LINK]])
    at = app_test(view="compare", compare=link).run()
    assert not at.exception and not at.warning
    assert _names(at) == ["tiny", "paper"]
    assert at.dataframe[0].value["Params (M)"].iloc[1] == pytest.approx(3.504872)
    at.multiselect(key="compare_presets").select("MobileNetV2 0.35/96").run()
    at.button(key="compare_add_presets").click().run()
    assert [entry[0] for entry in json.loads(at.query_params["compare"])] == ["tiny", "paper", "MobileNetV2 0.35/96"]


def test_a_link_with_a_broken_entry_keeps_the_rest_and_says_why():
    link = json.dumps([["bad", "1-16-1-3", "1.0", "224", "tf_same"], ["paper", *PAPER_LINK]])
    at = app_test(view="compare", compare=link).run()
    assert not at.exception
    assert "Configuration 1 in this link is left out: Row 1: stride s must be 1 or 2, got 3." in at.warning[0].value
    assert _names(at) == ["paper"]


def test_a_saved_list_loads_back_with_its_latencies():
    small = preset(0.35, 96)
    measured = measure_spec(small.spec, LatencySettings(runs=2, warmup=3))  # as Compare measures
    saved = Comparison((small, NamedConfig("wide", ArchSpec(width_mult=1.4, padding="tf_same"))),
                       ((small.spec, measured),))
    at = app_test(view="compare").run()
    at.number_input(key="compare_runs").set_value(2).run()
    at.file_uploader(key="compare_load").upload("list.json", saved.to_json().encode(), "application/json").run()
    assert not at.exception and not at.error
    assert _names(at) == ["MobileNetV2 0.35/96", "wide"]
    latencies = at.dataframe[0].value["Latency (ms)"].tolist()
    assert latencies[0] == pytest.approx(measured.median_ms) and pd.isna(latencies[1])  # only what was measured
    assert at.button(key="compare_measure").label == "Measure latency (1 to go)"

    at.file_uploader(key="compare_load").upload("spec.json", ArchSpec().to_json().encode(), "application/json").run()
    assert "spec.json: This file is not a saved comparison" in at.error[0].value
    assert _names(at) == ["MobileNetV2 0.35/96", "wide"]  # a bad file changes nothing
