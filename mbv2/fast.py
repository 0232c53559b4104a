"""A classification-only copy of a model: the eager logits in a fraction of the time.

`fast_model(model)` is the one entry point (the app, the CLI, evaluation, latency). Every engine
starts from the same copy, exact up to float rounding:
- every BatchNorm is folded into the convolution before it (eval-mode BatchNorm is a
  per-channel affine map, so it becomes the convolution's weight scale and bias);
- no autograd bookkeeping.
The folded copy keeps the module structure (a folded BatchNorm becomes an `nn.Identity`), so
`TFSameConv2d` keeps its TensorFlow padding.

Engines, chosen by measurement (`benchmarks/inference.py`, 2 threads, one image, as a share of
torchvision eager's time, side by side in one run; see the README's Speed section):
- "onnxruntime" (the default on a CPU): the folded copy exported by the TorchScript-based ONNX
  exporter (~0.3 s; the dynamo-based one took 8.7 s) with a dynamic batch, run by ONNX Runtime's CPU provider, which fuses each
  ReLU6 into its convolution: ~0.2x, ready ~0.5 s after `fast_model` is called;
- "torch": the folded copy in channels_last (NHWC) memory under `torch.inference_mode`: ~0.6x.
  The fallback where onnxruntime is missing or a model cannot be exported, and the engine on a GPU;
- `compile=True`: "torch" plus `torch.compile` (inductor, weights frozen): ~0.4x, after 15-25 s
  of compilation per input shape (a few seconds from inductor's cache);
- inductor's ahead-of-time packages (`torch._inductor.aoti_compile_and_package`) were measured
  too: ~0.44x after 16-67 s of compilation per architecture, so not used.
`MBV2_ENGINE=torch` (or `onnxruntime`) overrides the choice; `FastModel.engine` names the engine.

ONNX Runtime sizes its thread pool when a session is made, so a FastModel keeps one session per
thread count and uses the one matching `torch.get_num_threads()` at each call: the thread count
`mbv2.latency` sets for a measurement (and puts back afterwards) reaches ONNX Runtime too.
"""

from __future__ import annotations

import copy
import io
import os
import threading
import warnings
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from mbv2.device import inference_device
from mbv2.hooks import temporary_hooks
from mbv2.model import MobileNetV2, TFSameConv2d, same_padding
from mbv2.spec import ArchSpec

ENGINE_ENV = "MBV2_ENGINE"
Engine = Literal["onnxruntime", "torch"]
ENGINES: tuple[Engine, ...] = ("onnxruntime", "torch")
# An engine whose logits differ more than this (relative to their size) from the torch path's on the
# build's check batch is not used: the fast path must give the eager model's answers.
_CHECK_TOLERANCE = 1e-3
_ONE_EXPORT_AT_A_TIME = threading.Lock()


class FastModel(nn.Module):
    """Called like the eager model: (N, 3, H, W) images in, logits on the CPU out.

    `engine` names what runs it, e.g. "ONNX Runtime 1.31.1 (CPU)" or "PyTorch 2.14.1 (CPU)".
    `network` is the folded torch copy; it also serves any input size other than the spec's
    resolution, which the exported graph is fixed to.
    """

    def __init__(
        self,
        model: MobileNetV2,
        device: torch.device,
        compile: bool = False,
        engine: Engine | None = None,
        threads: int | None = None,
    ):
        super().__init__()
        self.spec: ArchSpec = model.spec
        self.device = device
        chosen = _chosen_engine(engine, device, compile)
        network = fold_batchnorm(model)
        self._onnx: _OnnxRuntime | None = None
        if chosen == "onnxruntime":
            try:
                self._onnx = _OnnxRuntime(network, model.spec.resolution, threads or torch.get_num_threads())
            except Exception:  # noqa: BLE001  (onnxruntime missing, an export or a check failed: torch serves)
                self._onnx = None
        network = network.to(device=device, memory_format=torch.channels_last)
        if compile:
            # Set globally: passed as torch.compile(options=...) it made no difference in torch 2.14.
            # Freezing only changes graphs compiled for inference, where weights are constants.
            import torch._inductor.config as inductor  # only here: importing inductor takes a second

            inductor.freezing = True
            # dynamic=False: one graph per input shape, as a classifier sees one shape again and again.
            network = torch.compile(network, dynamic=False)
        self.network = network
        if self._onnx is not None:
            self.engine = f"ONNX Runtime {self._onnx.version} (CPU)"
        else:
            self.engine = _torch_engine_name(device, compile)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor, threads: int | None = None) -> torch.Tensor:
        """`threads`: ONNX Runtime's for this call (default: torch's count); the torch path runs on torch's."""
        if self._onnx is not None and self._onnx.takes(images):
            return self._onnx(images, threads or torch.get_num_threads())
        return self.network(images.to(self.device, memory_format=torch.channels_last)).cpu()

    @property
    def runs_concurrently(self) -> bool:
        """Whether calls from several Python threads run at once (ONNX Runtime releases the GIL and
        takes its thread count per call); the torch path's own thread pool is process-wide."""
        return self._onnx is not None

    def prepare(self) -> None:
        """Make ready for the current thread count now, so that no timed call pays for it."""
        if self._onnx is not None:
            self._onnx.session(torch.get_num_threads())


def fast_model(
    model: MobileNetV2,
    device: torch.device | None = None,
    compile: bool = False,
    engine: Engine | None = None,
    threads: int | None = None,
) -> FastModel:
    """The fast inference path for `model`, on `device` (the GPU when there is one).

    `engine`: None picks by measurement (ONNX Runtime on a CPU where it is installed and the model
    exports, else torch), or `$MBV2_ENGINE`; "torch" forces the torch path. `threads`: the thread
    count ONNX Runtime is made ready for now (default: torch's); others are made when first asked for.
    """
    return FastModel(model, device or inference_device(), compile, engine, threads)


def engine_name(device: torch.device | None = None) -> str:
    """What `fast_model` runs a model on here, named as `FastModel.engine` names it (a model that cannot
    be exported falls back to torch, and its FastModel says so)."""
    device = device or inference_device()
    if _chosen_engine(None, device, compile=False) == "onnxruntime":
        try:
            import onnxruntime

            return f"ONNX Runtime {onnxruntime.__version__} (CPU)"
        except ImportError:
            pass
    return _torch_engine_name(device, compile=False)


def _torch_engine_name(device: torch.device, compile: bool) -> str:
    where = "CUDA" if device.type == "cuda" else device.type.upper()
    return f"PyTorch {torch.__version__.split('+')[0]}{' + torch.compile' * compile} ({where})"


def _chosen_engine(engine: Engine | None, device: torch.device, compile: bool) -> Engine:
    requested = engine or os.environ.get(ENGINE_ENV) or None
    if requested is not None and requested not in ENGINES:
        raise ValueError(f"{ENGINE_ENV} must be one of {', '.join(ENGINES)}, got {requested!r}.")
    if compile or device.type != "cpu":  # torch.compile is torch's; on a GPU, torch runs it (no onnxruntime-gpu)
        return "torch"
    return requested or "onnxruntime"


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


class _OnnxRuntime:
    """ONNX Runtime sessions of one folded network: one per thread count, made when first needed."""

    def __init__(self, network: nn.Module, resolution: int, threads: int):
        import onnxruntime  # raises ImportError where it is not installed: the torch path serves

        self.version = onnxruntime.__version__
        self.resolution = resolution
        self._network = network  # the CPU, NCHW folded copy: exported again for another thread count
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()
        self._check(threads)

    def takes(self, images: torch.Tensor) -> bool:
        """The exported graph's input: any batch of 3 x resolution x resolution float images."""
        return images.dim() == 4 and images.shape[0] > 0 and tuple(images.shape[1:]) == (
            3, self.resolution, self.resolution
        ) and images.dtype == torch.float32 and not images.requires_grad

    def __call__(self, images: torch.Tensor, threads: int) -> torch.Tensor:
        array = images.detach().cpu().contiguous().numpy()
        (logits,) = self.session(threads).run(None, {"images": array})
        return torch.from_numpy(logits)

    def session(self, threads: int):
        with self._lock:
            if threads not in self._sessions:
                self._sessions[threads] = _session(_onnx_bytes(self._network, self.resolution), threads)
            return self._sessions[threads]

    def _check(self, threads: int) -> None:
        """A batch of 2 through both engines: a graph that computes something else is never used."""
        images = torch.randn(2, 3, self.resolution, self.resolution, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            expected = self._network(images)
        logits = self(images, threads)
        finite = expected[expected.isfinite()]  # random weights of a deep design can overflow: both must agree
        scale = max(1.0, float(finite.abs().max())) if finite.numel() else 1.0
        close = logits.shape == expected.shape and torch.allclose(
            logits, expected, rtol=0, atol=_CHECK_TOLERANCE * scale, equal_nan=True
        )
        if not close:
            raise RuntimeError("ONNX Runtime's logits differ from the torch path's")


def _onnx_bytes(network: nn.Module, resolution: int) -> bytes:
    """The folded network as ONNX, batch dynamic, the spatial size fixed (TF padding is computed from it)."""
    example = torch.zeros(2, 3, resolution, resolution)
    buffer = io.BytesIO()
    # One export at a time: the exporter keeps settings in module globals, and app sessions build at once.
    with _ONE_EXPORT_AT_A_TIME, warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings: the padding arithmetic becomes constants, as intended
        # Inference tensors (a copy folded under inference_mode) cannot be traced; clone them out of it.
        exported = _exportable(network, resolution)
        torch.onnx.export(
            exported,
            (example,),
            buffer,
            dynamo=False,  # the TorchScript-based exporter: about a second, where dynamo's took several
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
        )
    return buffer.getvalue()


def _exportable(network: nn.Module, resolution: int) -> nn.Module:
    """A copy to trace: no inference tensors, and TensorFlow's padding as constants.

    `TFSameConv2d` computes its padding from the input's size; traced, that arithmetic stays in the
    graph as shape operations before a Pad, which ONNX Runtime cannot fold into the convolution (and
    runs in its own layout, converting back and forth). The spatial sizes are fixed here, so each
    becomes a constant zero pad that ONNX Runtime merges into the convolution's own padding.
    """
    plain = copy.deepcopy(network)
    sizes: dict[nn.Module, tuple[int, int]] = {}
    hooks = [
        module.register_forward_pre_hook(lambda module, args: sizes.__setitem__(module, tuple(args[0].shape[-2:])))
        for module in plain.modules()
        if isinstance(module, TFSameConv2d)
    ]
    with temporary_hooks(hooks), torch.no_grad():
        plain(torch.zeros(1, 3, resolution, resolution))
    for parent in list(plain.modules()):
        for name, child in list(parent.named_children()):
            if child in sizes:
                setattr(parent, name, _ConstantPadConv(child, *sizes[child]))
    # deepcopy of inference tensors (a copy folded under inference_mode) gives inference tensors, which
    # cannot be traced: replace each with a plain copy.
    for module in plain.modules():
        for name, parameter in list(module.named_parameters(recurse=False)):
            setattr(module, name, nn.Parameter(parameter.detach().clone(), requires_grad=False))
        for name, buffer in list(module.named_buffers(recurse=False)):
            module.register_buffer(name, buffer.clone())
    return plain


class _ConstantPadConv(nn.Sequential):
    """A `TFSameConv2d` for one input size: its padding as a constant, then the plain convolution."""

    def __init__(self, conv: TFSameConv2d, height: int, width: int):
        pad_h = same_padding(height, conv.kernel_size[0], conv.stride[0])
        pad_w = same_padding(width, conv.kernel_size[1], conv.stride[1])
        plain = nn.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0,
            groups=conv.groups, bias=conv.bias is not None,
        )
        plain.weight, plain.bias = conv.weight, conv.bias
        super().__init__(nn.ZeroPad2d((pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)), plain)


def _session(onnx: bytes, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "ACTIVE":
        # Idle threads sleep instead of spinning, as the app asks of OpenMP (app/main.py): on 2 shared cores
        # spinning took the time of whatever ran beside (decoding images, other sessions): 0.33x instead of
        # 0.26x torchvision for one image on a busy machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
