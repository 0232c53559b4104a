"""A model as files other tools read: TorchScript, its root operators as YAML, ONNX, the spec as JSON.

The operator list follows PyTorch's mobile custom-build recipe: trace the model, then
`torch.jit.export_opnames` gives the root operators that a selective build of the mobile
runtime must keep, written as a YAML list.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from mbv2.budget import PROCESS_BUDGET
from mbv2.cost import traced_bytes
from mbv2.errors import ExportError
from mbv2.model import MobileNetV2, build_model
from mbv2.spec import ArchSpec

ONNX_OPSET = 18


@dataclass(frozen=True)
class ExportFiles:
    """Where `write_all` put each format."""

    torchscript: Path
    operators: Path
    onnx: Path
    spec: Path


def seeded_model(spec: ArchSpec, seed: int = 0) -> MobileNetV2:
    """Random weights, but the same ones every time, so exporting one spec twice gives the same files."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_model(spec)


def example_input(spec: ArchSpec) -> torch.Tensor:
    return torch.zeros(1, 3, spec.resolution, spec.resolution)


class _TracedSize(nn.Module):
    """A traced model that refuses inputs of another size than it was traced at.

    A trace fixes every padding it computed ("SAME" padding depends on the input size), so an image
    of another size would run with the wrong padding and give quietly wrong logits.
    """

    __constants__ = ["resolution"]  # TorchScript cannot read this module's string annotations

    def __init__(self, traced: torch.jit.ScriptModule, resolution: int):
        super().__init__()
        self.traced = traced
        self.resolution = resolution

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-2] != self.resolution or image.shape[-1] != self.resolution:
            raise ValueError(
                f"This model was traced at {self.resolution}x{self.resolution} pixels; resize the image to that."
            )
        return self.traced(image)


def traced(model: MobileNetV2) -> torch.jit.ScriptModule:
    """The model traced at its spec's resolution, refusing other sizes; any batch size works."""
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but the mobile runtime and
        # export_opnames still read TorchScript; TracerWarnings flag the padding sizes, constant by design.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with PROCESS_BUDGET.reserve(traced_bytes(model.spec)):
            trace = torch.jit.trace(model.eval(), example_input(model.spec))
        return torch.jit.script(_TracedSize(trace, model.spec.resolution))


def torchscript_bytes(module: torch.jit.ScriptModule) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.save's deprecation notice
        torch.jit.save(module, buffer)
    return buffer.getvalue()


def root_operators(module: torch.jit.ScriptModule) -> list[str]:
    return sorted(torch.jit.export_opnames(module))


def operators_yaml(module: torch.jit.ScriptModule) -> str:
    return yaml.safe_dump(root_operators(module))


def onnx_bytes(model: MobileNetV2) -> bytes:
    """ONNX with the weights inline, input `image` (batch, 3, R, R) for any batch, and output `logits`."""
    try:
        with PROCESS_BUDGET.reserve(traced_bytes(model.spec)):
            program = torch.onnx.export(
                model.eval(),
                (example_input(model.spec),),
                dynamo=True,
                opset_version=ONNX_OPSET,
                input_names=["image"],
                output_names=["logits"],
                dynamic_shapes=({0: "batch"},),
                verbose=False,
            )
    except ImportError as error:
        raise ExportError(
            f"ONNX export needs the onnx and onnxscript packages ({error}). Install them with "
            "`pip install onnx onnxscript` (or `pip install .[export]`)."
        ) from None
    except torch.onnx.OnnxExporterError as error:
        raise ExportError(f"ONNX export failed: {str(error).strip().splitlines()[0]}") from None
    return program.model_proto.SerializeToString()


def write_all(model: MobileNetV2, directory: Path, stem: str = "mobilenet_v2") -> ExportFiles:
    """Write the four formats into `directory` (created if needed) and say where."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(
            f"Cannot make the folder {directory}: {error.strerror}. Choose a folder to write into."
        ) from None
    files = ExportFiles(
        torchscript=directory / f"{stem}.pt",
        operators=directory / f"{stem}.yaml",
        onnx=directory / f"{stem}.onnx",
        spec=directory / f"{stem}.json",
    )
    script = traced(model)
    contents = {
        files.torchscript: torchscript_bytes(script),
        files.operators: operators_yaml(script).encode(),
        files.onnx: onnx_bytes(model),
        files.spec: model.spec.to_json().encode(),
    }
    for path, data in contents.items():
        try:
            path.write_bytes(data)
        except OSError as error:
            raise ExportError(f"Cannot write {path}: {error.strerror}.") from None
    return files
