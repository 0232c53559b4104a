"""The Compare view in AppTest: the list of configurations, latency on demand, the plot, the exports."""

import gc

import pytest

from conftest import app_test, metrics


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
    assert [button.proto.label for button in at.get("download_button")] == ["Spec (JSON)"]
    at.button(key="compare_prepare").click().run()
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels == ["Spec (JSON)", "TorchScript (.pt)", "Root operators (YAML)", "ONNX"]
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


def _export(at, name: str) -> None:
    at.selectbox(key="compare_export_name").select(name).run()
    at.button(key="compare_prepare").click().run()
    assert len(at.get("download_button")) == 4


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
