"""Evaluation on real ImageNet images: both folder layouts, agreement without labels, caching, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import mbv2.evaluate
from conftest import DEV_IMAGES, ROOT, SAMPLE_IMAGES, WEIGHTS_JSON
from mbv2.errors import EvaluationError
from mbv2.evaluate import SYNSETS, Evaluator, block_importance, image_set


def link_images(folder, layout: str, count: int = 8):
    """`count` of the dev images laid out as ImageNet val (synset subfolders) or flat, as symlinks."""
    for path in sorted(DEV_IMAGES.glob("*.JPEG"))[:count]:
        synset = path.name.split("_", 1)[0]
        target = folder / synset / f"ILSVRC2012_val_{synset}.JPEG" if layout == "folders" else folder / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    return folder


def test_both_layouts_give_the_same_labels_and_scores(tmp_path, tf_source, tf_model):
    flat = image_set(link_images(tmp_path / "flat", "flat"))
    folders = image_set(link_images(tmp_path / "folders", "folders"))
    assert flat.labels == folders.labels and flat.is_labelled
    assert SYNSETS[flat.labels[0]] == "n01440764" and flat.labels[0] == 0  # tench is class 0
    scores = [Evaluator(tf_source, images, model=tf_model).evaluate(tf_source.spec) for images in (flat, folders)]
    assert scores[0].top1 == scores[1].top1 and scores[0].top5 == scores[1].top5
    assert scores[0].top1 >= 75 and scores[0].agreement == 100


def test_unlabelled_images_give_agreement_only(tf_source, tf_model):
    evaluator = Evaluator(tf_source, image_set(SAMPLE_IMAGES), model=tf_model)
    result = evaluator.evaluate(tf_source.spec.replace(resolution=192))
    assert result.top1 is None and result.top5 is None and 0 <= result.agreement <= 100
    assert result.images == len(list(SAMPLE_IMAGES.glob("*.jpg")))


def test_limit_spreads_over_the_folder_and_is_checked():
    images = image_set(DEV_IMAGES, limit=5)
    assert len(images.paths) == 5 and images.paths[0].name.startswith("n01440764")
    assert images.paths[-1].name.startswith("n04243546")  # every tenth (the 41st), not the first five
    assert image_set(DEV_IMAGES, limit=250).paths == image_set(DEV_IMAGES).paths  # all 50, each once
    with pytest.raises(EvaluationError, match="No folder"):
        image_set(DEV_IMAGES / "missing")
    with pytest.raises(EvaluationError, match="holds no images"):
        image_set(ROOT / "mbv2")


def test_results_are_cached_per_folder_contents(tmp_path, tf_source, tf_model, monkeypatch):
    folder = link_images(tmp_path / "flat", "flat", count=4)
    spec = tf_source.spec.replace(resolution=160)
    first = Evaluator(tf_source, image_set(folder), model=tf_model).evaluate(spec)
    computed = []
    monkeypatch.setattr(mbv2.evaluate, "predict", lambda *args, **kwargs: computed.append(args) or 1 / 0)
    assert Evaluator(tf_source, image_set(folder), model=tf_model).evaluate(spec) == first
    assert not computed
    link_images(tmp_path / "more", "flat", count=5)  # one more image: a different folder content
    (folder / sorted((tmp_path / "more").iterdir())[-1].name).symlink_to(sorted((tmp_path / "more").iterdir())[-1])
    with pytest.raises(ZeroDivisionError):
        Evaluator(tf_source, image_set(folder), model=tf_model).evaluate(spec)


@pytest.mark.slow
def test_block_importance_ranks_blocks(tf_source, tf_model):
    evaluator = Evaluator(tf_source, image_set(DEV_IMAGES), model=tf_model)
    full, blocks = block_importance(evaluator)
    assert [block.label for block in blocks][:3] == ["row 2, block 2", "row 3, block 2", "row 3, block 3"]
    assert len(blocks) == 10  # the paper's network has ten residual blocks
    drops = [full.top1 - block.evaluation.top1 for block in blocks]
    assert max(drops) >= 20 and min(drops) <= 6, drops  # some blocks matter a lot, some hardly


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MBV2_WEIGHTS": str(WEIGHTS_JSON), "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-m", "mbv2.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_cli_json_prints_one_object(tmp_path):
    result = run_cli("evaluate", "--width", "0.75", "--images", str(DEV_IMAGES), "--limit", "10", "--json")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    found = json.loads(result.stdout)
    assert found["images"] == 10 and 0 <= found["top1"] <= found["top5"] <= 100 and 0 <= found["agreement"] <= 100
    assert "sliced" in found["inheritance"]


def test_cli_without_spec_evaluates_the_weights_own_architecture():
    result = run_cli("evaluate", "--images", str(DEV_IMAGES))
    assert result.returncode == 0, result.stderr
    assert "top-1 84.0%" in result.stdout and "agreement with the original 100.0%" in result.stdout


def test_cli_says_where_to_find_images():
    result = run_cli("evaluate", "--images", str(DEV_IMAGES / "missing"))
    assert result.returncode == 2 and result.stderr.startswith("error: No folder at")
