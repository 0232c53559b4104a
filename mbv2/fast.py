"""A classification-only copy of a model: the eager logits in about half the time (on 2 CPU cores).

Each step is exact up to float rounding:
- every BatchNorm is folded into the convolution before it (eval-mode BatchNorm is a
  per-channel affine map, so it becomes the convolution's weight scale and bias);
- channels_last (NHWC) memory, the layout oneDNN's and cuDNN's convolutions run fastest on,
  depthwise ones above all;
- `torch.inference_mode`, so no autograd bookkeeping.
The copy keeps the module structure (a folded BatchNorm becomes an `nn.Identity`), so
`TFSameConv2d` keeps its TensorFlow padding.

`compile=True` adds `torch.compile` (inductor, with the weights frozen as constants), which
fuses each ReLU6 into its convolution: one image in ~0.32x torchvision's time instead of ~0.54x
on 2 cores, after a one-off compilation per input shape (15-25 s cold, a few seconds once
inductor's on-disk cache has it). Worth it for long jobs, not for a class waiting on a photo.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from mbv2.device import inference_device
from mbv2.model import MobileNetV2
from mbv2.spec import ArchSpec


class FastModel(nn.Module):
    """Called like the eager model: (N, 3, H, W) images in, logits on the CPU out."""

    def __init__(self, model: MobileNetV2, device: torch.device, compile: bool = False):
        super().__init__()
        self.spec: ArchSpec = model.spec
        self.device = device
        network = fold_batchnorm(model).to(device=device, memory_format=torch.channels_last)
        if compile:
            # Set globally: passed as torch.compile(options=...) it made no difference in torch 2.14.
            # Freezing only changes graphs compiled for inference, where weights are constants.
            import torch._inductor.config as inductor  # only here: importing inductor takes a second

            inductor.freezing = True
            # dynamic=False: one graph per input shape, as a classifier sees one shape again and again.
            network = torch.compile(network, dynamic=False)
        self.network = network

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images.to(self.device, memory_format=torch.channels_last)).cpu()


def fast_model(model: MobileNetV2, device: torch.device | None = None, compile: bool = False) -> FastModel:
    """The fast inference path for `model`, on `device` (the GPU when there is one)."""
    return FastModel(model, device or inference_device(), compile)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy in which every Conv2d followed by a BatchNorm2d is one Conv2d."""
    folded = copy.deepcopy(model).eval()
    for sequence in folded.modules():
        if not isinstance(sequence, nn.Sequential):
            continue
        for index in range(len(sequence) - 1):
            conv, norm = sequence[index], sequence[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                sequence[index] = fuse_conv_bn_eval(conv, norm)  # a copy of the same class: TF padding survives
                sequence[index + 1] = nn.Identity()
    return folded
