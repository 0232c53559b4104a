"""Inside a block: the inverted residual and its linear bottleneck, on the current image.

Four tabs: one block's five tensors side by side, ReLU6 statistics per stage, the ablation
(ReLU6 after every projection) and the paper's Figure 1. `mbv2.activations` and
`mbv2.manifold` compute; this module only draws.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots
from PIL import Image

import charts
import state
from mbv2.activations import (
    AblationLogits,
    ActivationCounts,
    BlockActivations,
    BlockStatistics,
    bottleneck_logits,
    block_statistics,
    capture_block,
    inverted_residuals,
    most_active_channels,
    stage_statistics,
    top1_accuracy,
)
from mbv2.classify import top_k
from mbv2.errors import EvaluationError, MBV2Error
from mbv2.evaluate import IMAGENET_ENV, default_image_folder, image_set
from mbv2.images import open_image
from mbv2.manifold import DIMENSIONS, Reconstruction, RoundTripLoss, loss_curve, relu_round_trip
from mbv2.model import MobileNetV2
from mbv2.spec import ArchSpec, BlockPlan
from mbv2.weights import WeightSource
from widgets import image_picker, network_note, weights_picker

CHANNELS_SHOWN_WIDEST = 24  # the widest tensor of a block shows this many channels, the others fewer, to scale
GRID_ROWS = 4
BLOCK_KEY = "inside_block"
SHARED_SCALE_KEY = "inside_shared_scale"
ABLATION_KEY = "inside_ablation"
DIMENSIONS_KEY = "inside_manifold_n"
Result = TypeVar("Result")


def render() -> None:
    st.header("Inside a block")
    st.markdown(
        "An inverted residual block widens a **narrow** input about six times (1×1 convolution + ReLU6), filters "
        "each channel on its own (depthwise 3×3 + ReLU6), then projects back to a **narrow** output with **no** "
        "ReLU: the *linear bottleneck*. Where shapes allow, the input is added to that output. The image and the "
        "weights are in the sidebar."
    )
    try:
        sources = state.weight_sources()
        with st.sidebar:  # the image and weights hold for every tab, so they stay out of the way
            st.divider()
            picked = image_picker()
            source = weights_picker(sources)
        if picked is None:
            st.info("Pick a sample, upload an image or take a picture in the sidebar to look inside the network.")
            return
        name, image = picked
        spec = state.current_spec()
        seen = source.preprocessing.at_resolution(spec.resolution).crop(image)
        st.sidebar.image(seen, caption=f"{name}, as the model sees it", width=160)
        st.caption(network_note(spec, source, state.inherited(spec, source.name).report))
        model = _hookable_model(source.name, spec)[0]  # only its structure is read outside the lock
        blocks, statistics, ablation, manifold = st.tabs(
            ["One block, five tensors", "Statistics per stage", "Ablation: ReLU6 in the bottleneck",
             "Why linear: Figure 1"]
        )
        with blocks:
            _block_tab(source, spec, image, model)
        with statistics:
            _statistics_tab(source, spec, image)
        with ablation:
            _ablation_tab(source, spec, name, image)
        with manifold:
            _manifold_tab()
    except MBV2Error as error:
        st.error(str(error))


@st.cache_resource(max_entries=4, show_spinner="Loading pretrained weights…")
def _hookable_model(source_name: str, spec: ArchSpec) -> tuple[MobileNetV2, threading.Lock]:
    """A private copy of the shared model (with inherited weights), so the ablation's hooks never
    reach the Classify view, and a lock, so two sessions never hook it at once."""
    return copy.deepcopy(state.inherited(spec, source_name).model), threading.Lock()


def _on_private_copy(source_name: str, spec: ArchSpec, compute: Callable[[MobileNetV2], Result]) -> Result:
    model, lock = _hookable_model(source_name, spec)
    with lock:
        return compute(model)


def _batch(source: WeightSource, spec: ArchSpec, images: list[Image.Image]) -> torch.Tensor:
    preprocessing = source.preprocessing.at_resolution(spec.resolution)
    return torch.stack([preprocessing(image) for image in images])


# --- one block, five tensors ---------------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner="Running the image through the network…")
def _captured(source_name: str, spec: ArchSpec, image: Image.Image, index: int) -> BlockActivations:
    batch = _batch(state.source_by_name(source_name), spec, [image])
    return _on_private_copy(source_name, spec, lambda model: capture_block(model, batch, index))


def block_label(plan: BlockPlan) -> str:
    shape = f"{plan.in_channels}→{plan.hidden_channels}→{plan.out_channels} channels"
    joined = "adds its input (residual)" if plan.has_residual else "no residual"
    return f"Stage {plan.stage}, block {plan.repeat + 1}: t = {plan.expansion}, {shape}, stride {plan.stride}, {joined}"


@st.fragment  # choosing a block or the colour scale redraws this tab only, not the whole page
def _block_tab(source: WeightSource, spec: ArchSpec, image: Image.Image, model: MobileNetV2) -> None:
    plans = {index: block.plan for index, block in inverted_residuals(model).items()}
    showcase = next((index for index, plan in plans.items() if plan.has_residual and plan.has_expansion), min(plans))
    index = st.selectbox(
        "Block", list(plans), index=list(plans).index(showcase), key=BLOCK_KEY, width=760,
        format_func=lambda index: block_label(plans[index]),
        help="Stages are the rows of the paper's Table 2; the first block of a stage may change stride and width. "
        "In the code, the block chosen is `model.features[index]`, its tensors caught with forward hooks.",
    )
    shared_scale = st.toggle(
        "One colour scale for all five", key=SHARED_SCALE_KEY,
        help="Off: each picture uses its own range, to show its pattern. On: the same value has the same colour "
        "everywhere, to compare sizes across the block.",
    )
    captured = _captured(source.name, spec, image, index)
    panels = [
        ("Block input", captured.block_input, "What the previous block passed on."),
        ("Expansion + ReLU6", captured.expanded, "A 1×1 convolution widens the input; ReLU6 zeroes the negatives."),
        ("Depthwise + ReLU6", captured.depthwise, "A 3×3 filter per channel, each on its own, then ReLU6 again."),
        ("Projection (linear)", captured.projected, "A 1×1 convolution back to narrow, with no ReLU: negative "
         "values (blue) survive."),
        ("Residual sum", captured.residual_sum, "Block input + projection: what the next block gets."),
    ]
    absent = {
        "Expansion + ReLU6": "No expansion layer: t = 1, so the depthwise layer works on the "
        f"{captured.plan.in_channels} input channels directly.",
        "Residual sum": "No residual: "
        + ("the stride is 2, so the output is smaller than the input"
           if captured.plan.stride != 1 else "input and output widths differ")
        + ". The projection output is the block output.",
    }
    present = [tensor for _, tensor, _ in panels if tensor is not None]
    widest = max(tensor.shape[1] for tensor in present)
    extent = max(_colour_extent(tensor[0]) for tensor in present) if shared_scale else None
    # Columns widen with their tensor's channels, so narrow-wide-narrow is what the eye sees; a narrow one keeps
    # half the widest's width to stay readable at 1280 px (its picture count stays to scale).
    widths = [max(tensor.shape[1] if tensor is not None else 0, widest / 2) for _, tensor, _ in panels]
    for column, (title, tensor, meaning) in zip(st.columns(widths, gap="small"), panels):
        with column:
            st.markdown(f"**{title}**  \n" + ("absent" if tensor is None else f"{tensor.shape[1]} channels"))
            if tensor is None:
                st.info(absent[title])
                continue
            shown = max(GRID_ROWS, round(CHANNELS_SHOWN_WIDEST * tensor.shape[1] / widest))
            st.plotly_chart(channel_grid_figure(tensor[0], shown, extent), key=f"grid-{title}",
                            config={"displayModeBar": False})
            st.caption(f"{meaning} {_tensor_caption(tensor, shown)}", help=_shape_help(tensor))
    st.caption(
        f"Columns widen with their tensor's channels; the widest shows its {CHANNELS_SHOWN_WIDEST} strongest "
        "channels (largest mean |value|), the others fewer, to scale, as small pictures (hover for the channel "
        "number). Red is positive, blue negative, white zero: after each ReLU6 there is no blue, and the white is "
        "what the ReLU6 threw away. "
        + ("All pictures share one colour scale." if shared_scale else "Each picture has its own colour scale.")
    )
    if captured.plan.has_residual:
        st.caption(
            "The residual connection joins the two **narrow** ends: the projection output is added, value for value, "
            "to the block input, so the wide expansion only has to learn a correction."
        )


def _tensor_caption(tensor: torch.Tensor, shown: int) -> str:
    counts = ActivationCounts.of(tensor)
    _, channels, height, width = tensor.shape
    signs = (
        f"{counts.negative_share:.0%} negative" if counts.negative
        else f"{counts.zero_share:.0%} zero · {counts.clipped_share:.1%} at 6"
    )
    return f"{channels} channels of {height}×{width} values, {min(shown, channels)} shown; {signs}."


def _shape_help(tensor: torch.Tensor) -> str:
    batch, channels, height, width = tensor.shape
    return (f"Tensor shape {batch}×{channels}×{height}×{width} (N×C×H×W: images in the batch, channels, height, "
            "width), as PyTorch stores it.")


def _colour_extent(activation: torch.Tensor) -> float:
    """The value drawn at full colour: a few border pixels run far larger than the rest, so saturating
    them keeps the patterns visible."""
    return float(np.percentile(np.abs(activation.float().numpy()), 99.5)) or 1.0


def channel_grid_figure(activation: torch.Tensor, count: int, extent: float | None = None) -> go.Figure:
    """The `count` most active channels of a (C, H, W) map tiled GRID_ROWS high, zero drawn white;
    `extent` is the value at full colour (by default this map's own)."""
    channels = most_active_channels(activation, count)
    maps = activation[channels].float().numpy()
    count, height, width = maps.shape
    rows = min(GRID_ROWS, count)
    columns = -(-count // rows)
    gap = max(1, height // 10)
    tiled = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    names = np.full(tiled.shape, "", dtype=object)
    for position, (channel, values) in enumerate(zip(channels, maps)):
        top, left = (position % rows) * (height + gap), (position // rows) * (width + gap)
        tiled[top : top + height, left : left + width] = values
        names[top : top + height, left : left + width] = f"channel {channel}"
    extent = extent or _colour_extent(activation[channels])
    figure = go.Figure(
        go.Heatmap(
            z=tiled, customdata=names, zmin=-extent, zmax=extent, colorscale="RdBu_r",
            hovertemplate="%{customdata}<br>value %{z:.2f}<extra></extra>",
            colorbar=dict(thickness=8, len=0.9, tickfont=dict(size=9)),
        )
    )
    figure.update_layout(height=250, margin=dict(l=0, r=0, t=4, b=4), plot_bgcolor="rgba(0,0,0,0)")
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return figure


# --- statistics per stage ------------------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner="Counting zeros and negatives in every block…")
def _statistics(source_name: str, spec: ArchSpec, image: Image.Image) -> tuple[BlockStatistics, ...]:
    batch = _batch(state.source_by_name(source_name), spec, [image])
    return _on_private_copy(source_name, spec, lambda model: block_statistics(model, batch))


STATISTICS = {  # column: (tensor, share, plain words)
    "expansion: zero": ("expanded", "zero_share", "zeroed by the expansion's ReLU6"),
    "expansion: at 6": ("expanded", "clipped_share", "clipped at 6 by the expansion's ReLU6"),
    "depthwise: zero": ("depthwise", "zero_share", "zeroed by the depthwise ReLU6"),
    "depthwise: at 6": ("depthwise", "clipped_share", "clipped at 6 by the depthwise ReLU6"),
    "projection: negative values": ("projected", "negative_share", "projection values below zero"),
    "projection: negative energy": (
        "projected", "negative_energy_share", "projection energy (sum of squares) below zero"
    ),
}
CHARTED = ("expansion: zero", "depthwise: zero", "projection: negative values", "projection: negative energy")


def statistics_table(blocks: tuple[BlockStatistics, ...], spec: ArchSpec) -> pd.DataFrame:
    rows = []
    for stage in stage_statistics(blocks):
        row = spec.blocks[stage.stage - 1]
        values = {column: getattr(getattr(stage, tensor), share) for column, (tensor, share, _) in STATISTICS.items()}
        rows.append({"stage": stage.stage, "t, c, n, s": f"{row.t}, {row.c}, {row.n}, {row.s}", **values})
    return pd.DataFrame(rows)


def _statistics_tab(source: WeightSource, spec: ArchSpec, image: Image.Image) -> None:
    table = statistics_table(_statistics(source.name, spec, image), spec)
    st.markdown(
        "Each ReLU6 throws information away: whatever it sets to zero is gone. A ReLU after the projection "
        "would also erase every negative value of the narrow bottleneck, and the last two columns measure how much "
        "that would be."
    )
    st.plotly_chart(statistics_figure(table), key="statistics-chart")
    st.caption(
        "Bars per stage (row of Table 2) for the current image. The blue bars are what the two ReLU6 inside each "
        "block zero; the green bars are what a ReLU after the projection would destroy: about half the values, "
        "carrying about half the energy."
    )
    st.dataframe(
        table, hide_index=True, placeholder="—",
        column_config={
            "stage": st.column_config.NumberColumn("stage", help="Row of the paper's Table 2"),
            **{column: st.column_config.NumberColumn(column, format="percent", help=words.capitalize() + ".")
               for column, (_, _, words) in STATISTICS.items()},
        },
    )
    st.caption(
        "The same numbers, summed over the blocks of each stage. Stage 1 has no expansion (t = 1). Values clipped "
        "at 6 are rare: here ReLU6 mostly acts as a plain ReLU."
    )


def statistics_figure(table: pd.DataFrame) -> go.Figure:
    colors = ["#1f6feb", "#8fb8f5", "#2da44e", "#9be9a8"]
    figure = go.Figure(
        [
            go.Bar(
                x=[f"stage {stage}" for stage in table["stage"]], y=table[column], name=STATISTICS[column][2],
                marker_color=color, hovertemplate="%{x}: %{y:.1%}<extra>" + column + "</extra>",
            )
            for column, color in zip(CHARTED, colors)
        ]
    )
    figure.update_layout(
        barmode="group", height=330, margin=dict(l=10, r=10, t=10, b=10),
        yaxis=dict(tickformat=".0%", range=[0, 1], title="share"),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    return figure


# --- ablation ------------------------------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner="Running the image with and without ReLU6 in the bottlenecks…")
def _ablated(source_name: str, spec: ArchSpec, image: Image.Image) -> AblationLogits:
    batch = _batch(state.source_by_name(source_name), spec, [image])
    return _on_private_copy(source_name, spec, lambda model: bottleneck_logits(model, batch))


@st.cache_data(max_entries=4, show_spinner="Classifying the labelled images three ways (about a minute)…")
def _labelled_ablation(source_name: str, spec: ArchSpec, folder: str) -> dict[str, float]:
    """Top-1 (%) over a labelled folder, as trained, with ReLU6 bottlenecks, and with the control."""
    source = state.source_by_name(source_name)
    images = image_set(folder, ABLATION_IMAGES)
    if not images.is_labelled:
        raise EvaluationError(f"{folder} has images without labels; name them <synset>_*.JPEG or use subfolders.")
    labels = torch.tensor(images.labels)
    parts = []
    for start in range(0, len(images.paths), ABLATION_CHUNK):  # a few images at a time: bounded memory
        paths = images.paths[start : start + ABLATION_CHUNK]
        batch = _batch(source, spec, [open_image(path.read_bytes(), name=path.name) for path in paths])
        parts.append(_on_private_copy(source_name, spec, lambda model: bottleneck_logits(model, batch)))
    return {
        variant: 100 * top1_accuracy(torch.cat([getattr(part, variant) for part in parts]), labels)
        for variant in ABLATION_VARIANTS
    }


ABLATION_IMAGES, ABLATION_CHUNK = 50, 10
ABLATION_VARIANTS = {
    "linear": ("As trained (linear bottleneck)", "The weights as they are."),
    "nonlinear": ("ReLU6 after every projection", "Every negative value of every bottleneck set to zero."),
    "control": (
        "Control: the same damage elsewhere",
        "In every block, as many values destroyed as that ReLU6 would zero, but in the wide tensor the projection "
        "reads, at random: same blocks, same count, another place.",
    ),
}


def _ablation_tab(source: WeightSource, spec: ArchSpec, name: str, image: Image.Image) -> None:
    st.markdown(
        "What if the bottleneck were not linear? The switch puts a ReLU6 after the projection of **every** block, "
        "with the very same weights (added on the fly; the weights file is untouched)."
    )
    nonlinear = st.toggle("ReLU6 after every projection (non-linear bottleneck)", key=ABLATION_KEY)
    logits = _ablated(source.name, spec, image)
    trained = top_k(logits.linear[0], source.labels)
    linear_column, nonlinear_column, samples_column = st.columns([4, 4, 5], gap="medium")
    linear_column.plotly_chart(
        charts.top_k_figure(trained).update_layout(title_text=f"Linear bottleneck (as trained): {name}"),
        key="top5-linear",
    )
    if not nonlinear:
        nonlinear_column.info("Turn the switch on to see the same image through non-linear bottlenecks.")
        return
    ablated = top_k(logits.nonlinear[0], source.labels)
    nonlinear_column.plotly_chart(
        charts.top_k_figure(ablated).update_layout(title_text="ReLU6 after every projection"),
        key="top5-nonlinear",
    )
    with samples_column:
        _labelled_ablation_section(source, spec)
    changed = "keeps" if ablated[0].index == trained[0].index else "loses"
    st.caption(
        f"Left: the top-5 as trained. Middle: the same weights with a ReLU6 after each projection; the image {changed} "
        f"its top class ({trained[0].label} → {ablated[0].label}). Right: top-1 on labelled images, as trained, with "
        "the ReLU6, and with the control. Where the control hurts as much as the ReLU6, these trained weights break "
        "under any damage of that size, and this test cannot tell whether linearity itself matters."
    )
    st.caption(
        "This is a harsher test than the paper's: the paper retrained the network with ReLU6 in the bottleneck and "
        "found it consistently less accurate than the linear one (Figure 6a). Here the weights expect linear "
        "bottlenecks, so the damage is far larger."
    )


def _labelled_ablation_section(source: WeightSource, spec: ArchSpec) -> None:
    folder = st.text_input(
        "Labelled images", value=str(default_image_folder() or ""), key="inside_ablation_images",
        help=f"Files named <synset>_*.JPEG or one subfolder per synset; the first {ABLATION_IMAGES} (spread evenly) "
        f"are used. {IMAGENET_ENV} fills this in.",
    )
    if not folder.strip():
        st.info(f"Type a folder of labelled ImageNet images (or set {IMAGENET_ENV}) to measure top-1 three ways.")
        return
    if not st.button("Measure top-1 three ways", key="inside_ablation_measure", type="primary"):
        st.caption("About a minute on two CPU cores for 50 images; the result is kept for everyone.")
        return
    try:
        scores = _labelled_ablation(source.name, spec, folder.strip())
    except MBV2Error as error:
        st.error(str(error))
        return
    for variant, (title, meaning) in ABLATION_VARIANTS.items():
        st.metric(title, f"{scores[variant]:.0f}%", help=meaning, border=True)


# --- manifold demo -------------------------------------------------------------------------


@st.cache_data(show_spinner="Averaging the round trip over random matrices…")
def _loss_curve() -> dict[int, RoundTripLoss]:
    return loss_curve()


@st.fragment  # a step of the slider redraws the spiral only
def _manifold_tab() -> None:
    st.markdown(
        "The paper's Figure 1, the reason for linear bottlenecks: a 2-D spiral is embedded into **n** dimensions "
        "by a random matrix T, passed through a ReLU, and projected back with the pseudo-inverse of T. Where fewer "
        "than two of the n coordinates survive the ReLU, points collapse onto each other and cannot be told apart."
    )
    dimensions = st.slider(
        "n: dimensions of the embedding", DIMENSIONS.start, DIMENSIONS.stop - 1, value=3, key=DIMENSIONS_KEY,
        help="The random matrices are seeded, so everyone sees the same picture for the same n.",
    )
    trip = relu_round_trip(dimensions)
    curve = _loss_curve()
    spiral_column, curve_column = st.columns([3, 2], gap="large")
    with spiral_column:
        st.plotly_chart(spiral_figure(trip), key="manifold-spiral")
        st.caption(
            f"Left: the input spiral, coloured from its centre (dark) to its end (yellow). Right: the round trip "
            f"through ReLU in {dimensions} dimensions, same colours. Black crosses mark the {trip.collapsed_share:.0%} "
            "of points where fewer than two coordinates survived: those arcs are squashed flat, and the "
            "information is gone."
        )
    with curve_column:
        st.plotly_chart(loss_figure(curve, trip), key="manifold-curve")
        st.caption(
            "Averaged over 100 random matrices: the share of collapsed points and the distance between the round trip "
            "and the spiral (relative to its size). Both fall as n grows: a ReLU is safe only in many dimensions, "
            "so the narrow bottleneck stays linear."
        )


def spiral_figure(trip: Reconstruction) -> go.Figure:
    figure = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.08,
        subplot_titles=("Input spiral (2-D)", f"pinv(T) · ReLU(T · x), n = {trip.dimensions}"),
    )
    progress = np.linspace(0.0, 1.0, len(trip.original))
    for column, points in ((1, trip.original), (2, trip.recovered)):
        figure.add_scatter(
            x=points[:, 0], y=points[:, 1], mode="markers", showlegend=False, row=1, col=column,
            marker=dict(size=5, color=progress, colorscale="Viridis"), hoverinfo="skip",
        )
    collapsed = trip.recovered[trip.collapsed]
    figure.add_scatter(
        x=collapsed[:, 0], y=collapsed[:, 1], mode="markers", name="collapsed: < 2 coordinates survive",
        marker=dict(symbol="x-thin", size=6, line=dict(width=1, color="black")), row=1, col=2, hoverinfo="skip",
    )
    reach = float(np.abs(np.concatenate([trip.original, trip.recovered])).max()) * 1.05
    figure.update_xaxes(range=[-reach, reach], zeroline=False)
    figure.update_yaxes(range=[-reach, reach], zeroline=False, scaleanchor="x")
    figure.update_yaxes(scaleanchor="x2", row=1, col=2)
    figure.update_layout(
        height=370, margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(yanchor="top", y=1.0, xanchor="right", x=1.0, bgcolor="rgba(255,255,255,0.7)"),
    )
    return figure


def loss_figure(curve: dict[int, RoundTripLoss], trip: Reconstruction) -> go.Figure:
    dimensions = list(curve)
    figure = go.Figure(
        [
            go.Scatter(
                x=dimensions, y=[loss.collapsed_share for loss in curve.values()], name="points collapsed",
                mode="lines+markers", line_color="#cf222e", hovertemplate="n = %{x}: %{y:.0%} collapsed<extra></extra>",
            ),
            go.Scatter(
                x=dimensions, y=[loss.error for loss in curve.values()], name="reconstruction error",
                mode="lines+markers", line_color="#1f6feb", hovertemplate="n = %{x}: error %{y:.2f}<extra></extra>",
            ),
        ]
    )
    figure.add_vline(x=trip.dimensions, line_dash="dot", line_color="#6e7781")
    figure.update_layout(
        height=370, margin=dict(l=10, r=10, t=40, b=10),
        title=dict(text="What the ReLU loses, by n", font=dict(size=14)),
        xaxis=dict(title="n (dimensions)", range=[DIMENSIONS.start - 0.5, DIMENSIONS.stop - 0.5]),
        yaxis=dict(range=[0, 1], title="share / relative error"),
        legend=dict(yanchor="top", y=0.98, xanchor="right", x=0.98),
    )
    return figure
