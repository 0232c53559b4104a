"""From an image to the top-k classes, using the preprocessing that belongs to the weights."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn

from mbv2.model import MobileNetV2, build_model
from mbv2.weights import WeightSource, load_state_dict, load_weights


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


def pretrained_model(source: WeightSource, progress: bool = False) -> MobileNetV2:
    """The architecture the source was trained with, its weights loaded, in eval mode."""
    model = build_model(source.spec)
    load_weights(model, load_state_dict(source, progress=progress))
    return model


def top_k(logits: torch.Tensor, labels: tuple[str, ...], k: int = 5) -> list[Prediction]:
    """The k most probable classes of one logit vector, most probable first."""
    probabilities = torch.softmax(logits.flatten().float(), dim=0)
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [Prediction(int(i), labels[int(i)], float(p)) for p, i in zip(values, indices)]


@torch.inference_mode()
def classify(model: nn.Module, source: WeightSource, image: Image.Image, k: int = 5) -> list[Prediction]:
    """Top-k predictions for an RGB image (see `mbv2.images.open_image` for any upload)."""
    batch = source.preprocessing(image).unsqueeze(0)
    return top_k(model(batch)[0], source.labels, k)
