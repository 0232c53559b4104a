"""From an image to the top-k classes, using the preprocessing that belongs to the weights."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from mbv2.fast import FastModel
from mbv2.model import MobileNetV2, build_model
from mbv2.weights import WeightSource, load_state_dict, load_weights


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


def pretrained_model(source: WeightSource, progress: bool = False) -> MobileNetV2:
    """The architecture the source was trained with, its weights loaded, in eval mode.

    To classify only, `mbv2.fast.fast_model(pretrained_model(source))` gives the same logits in a
    fraction of the time; keep this eager model to look at activations.
    """
    model = build_model(source.spec, initialise=False)  # every tensor is about to be overwritten
    load_weights(model, load_state_dict(source, progress=progress))
    return model


def top_k(logits: torch.Tensor, labels: tuple[str, ...], k: int = 5) -> list[Prediction]:
    """The k most probable classes of one logit vector, most probable first."""
    probabilities = torch.softmax(logits.flatten().float(), dim=0)
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [Prediction(int(i), labels[int(i)], float(p)) for p, i in zip(values, indices)]


@torch.inference_mode()
def classify(model: MobileNetV2 | FastModel, source: WeightSource, image: Image.Image, k: int = 5) -> list[Prediction]:
    """Top-k predictions for an RGB image (see `mbv2.images.open_image` for any upload).

    The source's preprocessing, at the model's own resolution: an edited network may take other sizes.
    """
    batch = source.preprocessing.at_resolution(model.spec.resolution)(image).unsqueeze(0)
    return top_k(model(batch)[0], source.labels, k)
