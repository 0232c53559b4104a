"""Build a MobileNetV2 from an `ArchSpec`, key-for-key compatible with torchvision.

Module names follow torchvision's `mobilenet_v2` exactly (`features.N.conv.K...`,
`classifier.1`), so its state_dicts load with `strict=True`. Inside each block the
`conv` sequence is [expand (if t > 1), depthwise, project conv, project BatchNorm]: the
projection has no activation, which is the paper's "linear bottleneck".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mbv2.spec import ArchSpec, BlockPlan


class TFSameConv2d(nn.Conv2d):
    """A convolution padded like TensorFlow's "SAME": the extra pixel goes right and bottom.

    Weights trained in TensorFlow expect this; PyTorch's symmetric padding shifts every
    stride-2 sampling grid by one pixel and costs about 5 points of top-1.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        pad_w = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return super().forward(x)


def same_padding(size: int, kernel: int, stride: int) -> int:
    out = math.ceil(size / stride)
    return max((out - 1) * stride + kernel - size, 0)


def conv_bn_relu6(
    in_channels: int, out_channels: int, *, kernel: int, stride: int, groups: int, padding: str
) -> nn.Sequential:
    """Conv → BatchNorm → ReLU6, the unit torchvision calls Conv2dNormActivation."""
    if padding == "tf_same" and stride > 1:
        conv: nn.Conv2d = TFSameConv2d(
            in_channels, out_channels, kernel_size=kernel, stride=stride, padding=0, groups=groups, bias=False
        )
    else:
        conv = nn.Conv2d(
            in_channels, out_channels, kernel_size=kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups,
            bias=False,
        )
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Narrow → wide (1x1 + ReLU6) → depthwise 3x3 + ReLU6 → narrow (linear 1x1) [+ input]."""

    def __init__(self, plan: BlockPlan, padding: str):
        super().__init__()
        self.plan = plan
        hidden = plan.hidden_channels
        roles: dict[str, list[nn.Module]] = {}
        if plan.has_expansion:
            roles["expand"] = [conv_bn_relu6(plan.in_channels, hidden, kernel=1, stride=1, groups=1, padding=padding)]
        roles["depthwise"] = [
            conv_bn_relu6(hidden, hidden, kernel=3, stride=plan.stride, groups=hidden, padding=padding)
        ]
        roles["project"] = [
            nn.Conv2d(hidden, plan.out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(plan.out_channels),
        ]
        # One flat `conv` sequence, as torchvision names it, so its state_dicts load key for key.
        self.conv = nn.Sequential(*(module for modules in roles.values() for module in modules))
        self._parts: dict[str, tuple[str, ...]] = {}
        position = 0
        for role, modules in roles.items():
            self._parts[role] = tuple(f"conv.{position + offset}" for offset in range(len(modules)))
            position += len(modules)
        self.use_res_connect = plan.has_residual

    @property
    def parts(self) -> dict[str, tuple[str, ...]]:
        """Each role ("expand", "depthwise", "project") and the names of its modules within the block,
        in order; the last one's output is the role's output. A block with t = 1 has no "expand"."""
        return dict(self._parts)

    def part(self, role: str) -> nn.Module:
        """The module whose output is `role`'s output: where to hook it. KeyError for a role the block lacks."""
        return self.get_submodule(self._parts[role][-1])

    @property
    def expand(self) -> nn.Module | None:
        return self.part("expand") if "expand" in self._parts else None

    @property
    def depthwise(self) -> nn.Module:
        return self.part("depthwise")

    @property
    def project(self) -> nn.Module:
        """The BatchNorm that ends the linear projection: its output is the bottleneck."""
        return self.part("project")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, spec: ArchSpec, dropout: float = 0.2, initialise: bool = True):
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = [conv_bn_relu6(3, spec.stem_out, kernel=3, stride=2, groups=1, padding=spec.padding)]
        layers += [InvertedResidual(plan, spec.padding) for plan in spec.block_plans]
        layers.append(
            conv_bn_relu6(
                spec.block_plans[-1].out_channels, spec.last_out, kernel=1, stride=1, groups=1, padding=spec.padding
            )
        )
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(spec.last_out, spec.num_classes))
        if initialise:
            _init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


def _init_like_torchvision(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


def build_model(spec: ArchSpec, initialise: bool = True) -> MobileNetV2:
    """A randomly initialised model in eval mode; load weights with `mbv2.weights`.

    `initialise=False` keeps PyTorch's default initialisation instead of redrawing every
    weight like torchvision: nearly half the build time, for callers that overwrite the weights or
    only need shapes.
    """
    return MobileNetV2(spec, initialise=initialise).eval()
