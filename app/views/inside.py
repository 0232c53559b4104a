"""Inside a block: the inverted residual and its linear bottleneck, on the current image.

Four tabs: one block's five tensors side by side, ReLU6 statistics per stage, the ablation
(ReLU6 after every projection) and the paper's Figure 1. `mbv2.activations` and
`mbv2.manifold` compute; this module only draws.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch
from PIL import Image

import charts
import state
from mbv2.activations import ActivationCounts, BlockStatistics, inverted_residuals, stage_statistics
from mbv2.classify import top_k
from mbv2.errors import MBV2Error
from mbv2.evaluate import IMAGENET_ENV, default_image_folder
from mbv2.manifold import DIMENSIONS, relu_round_trip
from mbv2.model import MobileNetV2
from mbv2.spec import ArchSpec, BlockPlan
from mbv2.weights import WeightSource
from widgets import image_picker, network_note, weights_picker

CHANNELS_SHOWN_WIDEST = 24  # the widest tensor of a block shows this many channels, the others fewer, to scale
BLOCK_KEY = "inside_block"
SHARED_SCALE_KEY = "inside_shared_scale"
ABLATION_KEY = "inside_ablation"
DIMENSIONS_KEY = "inside_manifold_n"


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
        st.caption(network_note(spec, source, state.inherited(spec, source).report))
        model = state.hookable_model(spec, source)[0]  # only its structure is read outside the lock
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


# --- one block, five tensors ---------------------------------------------------------------


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
    captured = state.captured(spec, source, image, index)
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
    extent = max(charts.colour_extent(tensor[0]) for tensor in present) if shared_scale else None
    # Columns widen with their tensor's channels, so narrow-wide-narrow is what the eye sees; a narrow one keeps
    # half the widest's width to stay readable at 1280 px (its picture count stays to scale).
    widths = [max(tensor.shape[1] if tensor is not None else 0, widest / 2) for _, tensor, _ in panels]
    for column, (title, tensor, meaning) in zip(st.columns(widths, gap="small"), panels):
        with column:
            st.markdown(f"**{title}**  \n" + ("absent" if tensor is None else f"{tensor.shape[1]} channels"))
            if tensor is None:
                st.info(absent[title])
                continue
            shown = max(charts.GRID_ROWS, round(CHANNELS_SHOWN_WIDEST * tensor.shape[1] / widest))
            st.plotly_chart(charts.channel_grid_figure(tensor[0], shown, extent), key=f"grid-{title}",
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


# --- statistics per stage ------------------------------------------------------------------


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
        row = spec.stages[stage.stage - 1]
        values = {column: getattr(getattr(stage, tensor), share) for column, (tensor, share, _) in STATISTICS.items()}
        rows.append({"stage": stage.stage, "t, c, n, s": f"{row.t}, {row.c}, {row.n}, {row.s}", **values})
    return pd.DataFrame(rows)


def _statistics_tab(source: WeightSource, spec: ArchSpec, image: Image.Image) -> None:
    table = statistics_table(state.activation_statistics(spec, source, image), spec)
    st.markdown(
        "Each ReLU6 throws information away: whatever it sets to zero is gone. A ReLU after the projection "
        "would also erase every negative value of the narrow bottleneck, and the last two columns measure how much "
        "that would be."
    )
    st.plotly_chart(
        charts.statistics_figure(table, {column: STATISTICS[column][2] for column in CHARTED}), key="statistics-chart"
    )
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


# --- ablation ------------------------------------------------------------------------------


ABLATION_IMAGES = 50  # labelled images the ablation classifies three ways, spread evenly over the folder
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
    logits = state.ablated(spec, source, image)
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
        scores = state.labelled_ablation(spec, source, folder.strip(), ABLATION_IMAGES)
    except MBV2Error as error:
        st.error(str(error))
        return
    for variant, (title, meaning) in ABLATION_VARIANTS.items():
        st.metric(title, f"{scores[variant]:.0f}%", help=meaning, border=True)


# --- manifold demo -------------------------------------------------------------------------


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
    curve = state.relu_loss_curve()
    spiral_column, curve_column = st.columns([3, 2], gap="large")
    with spiral_column:
        st.plotly_chart(charts.spiral_figure(trip), key="manifold-spiral")
        st.caption(
            f"Left: the input spiral, coloured from its centre (dark) to its end (yellow). Right: the round trip "
            f"through ReLU in {dimensions} dimensions, same colours. Black crosses mark the {trip.collapsed_share:.0%} "
            "of points where fewer than two coordinates survived: those arcs are squashed flat, and the "
            "information is gone."
        )
    with curve_column:
        st.plotly_chart(charts.loss_figure(curve, trip), key="manifold-curve")
        st.caption(
            "Averaged over 100 random matrices: the share of collapsed points and the distance between the round trip "
            "and the spiral (relative to its size). Both fall as n grows: a ReLU is safe only in many dimensions, "
            "so the narrow bottleneck stays linear."
        )


