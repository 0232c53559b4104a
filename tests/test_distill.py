"""Recovery by distillation: a short run on the eval images beats the inherited weights on the dev images."""

from __future__ import annotations

import json
import statistics

import pytest

from conftest import DEV_IMAGES, EVAL_IMAGES, run_cli
from mbv2.distill import DistillationSettings, distill, recover
from mbv2.errors import ResourceError
from mbv2.evaluate import Evaluator, calibration_set, image_set
from mbv2.inherit import inherit


@pytest.mark.slow
def test_distilled_width_0_75_beats_its_inherited_weights_and_loads_back(tf_source, tf_model, tmp_path):
    evaluator = Evaluator(tf_source, image_set(DEV_IMAGES), calibration_set(EVAL_IMAGES), model=tf_model)
    spec = tf_source.spec.replace(width_mult=0.75)
    steps = []
    recovery = recover(evaluator, spec, image_set(EVAL_IMAGES), tmp_path, progress=lambda *step: steps.append(step))
    assert len(recovery.losses) == len(steps) == DistillationSettings.steps
    assert statistics.mean(recovery.losses[-20:]) < statistics.mean(recovery.losses[:20])
    # 50 images: each is 2 points; a real gain is several images, not a tolerance.
    assert recovery.after.top1 >= recovery.before.top1 + 6, (recovery.before.describe(), recovery.after.describe())
    assert recovery.saved.spec == spec and recovery.saved.spec.padding == "tf_same"

    result = run_cli("evaluate", "--weights", str(tmp_path), "--images", str(DEV_IMAGES), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["top1"] == recovery.after.top1  # the saved files are the network measured


def test_settings_are_checked():
    with pytest.raises(ValueError, match="steps must be a whole number of at least 1"):
        DistillationSettings(steps=0)


def test_a_design_too_large_to_train_in_one_batch_is_refused_before_any_work(tf_model, tf_source, tmp_path):
    large = inherit(tf_model, tf_source.spec.replace(resolution=1024)).model
    with pytest.raises(ResourceError, match=r"Distilling this design in batches of 16 would need about .* Use a batch"):
        distill(tf_model, large, tf_source.preprocessing, image_set(EVAL_IMAGES, limit=4))
