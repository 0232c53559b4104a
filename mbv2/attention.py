"""Where the network looks: Grad-CAM class activation maps from the `grad-cam` package.

Grad-CAM weighs the last convolution's feature maps by the gradient of a class score and keeps
the positive part: a coarse (7×7 at 224) map of the pixels that raised that score, upsampled to
the input. It runs on the same networks the classifier uses (the fast path's folded network, or
the eager model), so the map explains the very logits the user sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from mbv2.budget import PROCESS_BUDGET
from mbv2.cost import traced_bytes
from mbv2.fast import FastModel
from mbv2.model import MobileNetV2
from mbv2.weights import WeightSource


@dataclass(frozen=True)
class AttentionMap:
    """A class activation map over the image the model saw (after the weights' crop)."""

    seen: Image.Image  # the cropped, resized RGB image the network classified
    heat: np.ndarray  # (height, width) float32 in [0, 1], the size of `seen`
    class_index: int
    label: str

    def overlay(self, image_weight: float = 0.55) -> Image.Image:
        """The map in colour (blue cold, red hot) over the image, as grad-cam draws it."""
        from pytorch_grad_cam.utils.image import show_cam_on_image  # see class_activation_map

        rgb = np.asarray(self.seen, dtype=np.float32) / 255.0
        return Image.fromarray(show_cam_on_image(rgb, self.heat, use_rgb=True, image_weight=image_weight))


def class_activation_map(
    model: MobileNetV2 | FastModel, source: WeightSource, image: Image.Image, class_index: int | None = None
) -> AttentionMap:
    """Grad-CAM of `class_index` (the top-1 class when None) on the last convolution of `model`.

    Backpropagation keeps every feature map, as a trace does, so it reserves the same memory.
    """
    # Imported when a map is asked for: grad-cam pulls in torchvision and torch._dynamo (2.4 s), which
    # every new server would otherwise pay before its first page.
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    network = model.network if isinstance(model, FastModel) else model
    preprocessing = source.preprocessing.at_resolution(model.spec.resolution)
    seen = preprocessing.crop(image)
    # Grad-CAM only needs gradients at the activations: asking for them at the input builds the graph
    # without writing .grad into the (shared, frozen) weights.
    batch = preprocessing.normalise(seen).unsqueeze(0).requires_grad_(True)
    with PROCESS_BUDGET.reserve(traced_bytes(model.spec)), _weights_frozen(network), GradCAM(
        model=network, target_layers=[network.features[-1]]
    ) as cam:
        targets = None if class_index is None else [ClassifierOutputTarget(class_index)]
        heat = cam(input_tensor=batch, targets=targets)[0]
        chosen = int(cam.outputs[0].argmax()) if class_index is None else class_index
    return AttentionMap(seen=seen, heat=np.nan_to_num(heat).astype(np.float32), class_index=chosen,
                        label=source.labels[chosen])


@contextmanager
def _weights_frozen(network: nn.Module) -> Iterator[None]:
    trainable = [parameter for parameter in network.parameters() if parameter.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)
