"""Plotly figures for the views, and the number formats they share: pure functions, no streamlit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from mbv2.activations import most_active_channels
from mbv2.analysis import LAYER_KINDS, Analysis, Convention, LayerRow
from mbv2.classify import Prediction
from mbv2.compare import TF_SLIM_REFERENCES, TF_SLIM_SOURCE_SHORT, ConfigSummary, pareto_front
from mbv2.layertime import LayerProfile
from mbv2.manifold import DIMENSIONS, RoundTripLoss, Reconstruction

KIND_COLORS = {
    "stem": "#8b949e",
    "expand": "#1f6feb",
    "depthwise": "#f0883e",
    "project": "#2da44e",
    "last conv": "#8250df",
    "pool": "#d0d7de",
    "classifier": "#bf3989",
}
CONV_KINDS = ("stem", "expand", "depthwise", "project", "last conv")
GRID_ROWS = 4  # a channel grid is this many pictures high


def count_text(number: float) -> str:
    """A count at a glance: 300,774,272 -> "300.8M", 62,720 -> "62.7k", 928 -> "928"."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= scale:
            return f"{number / scale:.1f}{suffix}"
    return f"{number:,.0f}"


def shape_text(shape: tuple[int, ...]) -> str:
    """(N, C, H, W) as the paper writes it, H×W×C; (N, C) as C."""
    if len(shape) == 4:
        return f"{shape[2]}×{shape[3]}×{shape[1]}"
    return str(shape[-1])


def stage_text(row: LayerRow) -> str:
    """Which row of the bottleneck table a layer belongs to: "stem", "row 3" or "head"."""
    if row.plan is not None:
        return f"row {row.plan.stage}"
    return "stem" if row.kind == "stem" else "head"


def position_text(row: LayerRow) -> str:
    """Where a layer sits along the network: stem, b1 ... bN (blocks of model.features), head layers."""
    if row.kind in ("stem", "last conv", "pool", "classifier"):
        return {"last conv": "conv 1×1", "classifier": "fc"}.get(row.kind, row.kind)
    return f"b{row.block}"


def cost_figure(analysis: Analysis, convention: Convention) -> go.Figure:
    """MAdds (top) and parameters (bottom) per block, each bar stacked by layer kind."""
    positions = list(dict.fromkeys(position_text(row) for row in analysis.rows))
    total_madds = analysis.madds(convention)
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
        subplot_titles=("Multiply-adds per block", "Parameters per block"),
    )
    for kind in LAYER_KINDS:
        rows = [row for row in analysis.rows if row.kind == kind]
        if not rows:
            continue
        share = sum(row.madds(convention) for row in rows) / total_madds
        share_text = f"{share:.0%}" if share >= 0.01 else f"{share:.1%}"
        hover = [
            f"{position_text(row)} {kind} ({stage_text(row)})<br>{shape_text(row.input_shape)} → "
            f"{shape_text(row.output_shape)}<br>MAdds {row.madds(convention):,}<br>params {row.params:,}"
            for row in rows
        ]
        x = [position_text(row) for row in rows]
        for axis_row, values in ((1, [row.madds(convention) for row in rows]), (2, [row.params for row in rows])):
            figure.add_bar(
                x=x, y=values, name=f"{kind} ({share_text} of MAdds)", legendgroup=kind, showlegend=axis_row == 1,
                marker_color=KIND_COLORS[kind], hovertext=hover, hoverinfo="text", row=axis_row, col=1,
            )
    figure.update_layout(
        barmode="stack", height=520, margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.06, x=0),
    )
    figure.update_xaxes(categoryorder="array", categoryarray=positions, tickangle=-45)
    return figure


def channel_figure(analysis: Analysis) -> go.Figure:
    """Channels through the network, drawn symmetrically so each block shows as narrow-wide-narrow."""
    convs = [row for row in analysis.rows if row.kind in CONV_KINDS]
    channels = [convs[0].input_shape[1]] + [row.output_shape[1] for row in convs]
    labels = [f"input image: {shape_text(convs[0].input_shape)}"] + [
        f"{position_text(row)} {row.kind} ({stage_text(row)}): {shape_text(row.output_shape)}"
        for row in convs
    ]
    # Steps hold each value until the next layer; repeating the last point gives it a width too.
    channels, labels = channels + channels[-1:], labels + labels[-1:]
    x = list(range(len(channels)))
    band = dict(x=x, mode="lines", line=dict(shape="hv", color=KIND_COLORS["expand"], width=1), showlegend=False)
    figure = go.Figure()
    figure.add_scatter(y=[-c / 2 for c in channels], hoverinfo="skip", **band)
    figure.add_scatter(
        y=[c / 2 for c in channels], fill="tonexty", fillcolor="rgba(31, 111, 235, 0.35)", hovertext=labels,
        hoverinfo="text", **band,
    )
    stages: dict[int, list[float]] = {}
    for index, row in enumerate(convs):
        if 0 < row.stage <= len(analysis.spec.stages):
            stages.setdefault(row.stage, []).append(index + 1.5)  # index 0 is the input image
    ticks = _channel_ticks(max(channels))
    figure.update_layout(
        height=520, margin=dict(l=10, r=10, t=40, b=10), hovermode="closest",
        title=dict(text="Channel width through the network (hover for shapes)", font=dict(size=14)),
        yaxis=dict(
            title="channels", zeroline=False, tickvals=[sign * t / 2 for t in ticks for sign in (1, -1)],
            ticktext=[str(t) for t in ticks for _ in (1, -1)],
        ),
        xaxis=dict(
            title="row of the table (stem on the left, head on the right)", showgrid=False,
            tickvals=[sum(xs) / len(xs) for xs in stages.values()], ticktext=[str(stage) for stage in stages],
        ),
    )
    return figure


def _channel_ticks(widest: int) -> list[int]:
    step = next(step for step in (16, 32, 64, 128, 256, 512, 1024, 2048, 4096) if widest / step <= 5)
    return list(range(step, widest + 1, step))


def top_k_figure(predictions: list[Prediction]) -> go.Figure:
    """Horizontal bars, most probable class on top, each labelled with its probability."""
    ordered = list(reversed(predictions))
    figure = go.Figure(
        go.Bar(
            x=[p.probability for p in ordered], y=[p.label for p in ordered], orientation="h",
            text=[f"{p.probability:.1%}" for p in ordered], textposition="outside", cliponaxis=False,
            marker_color=["#1f6feb" if p is predictions[0] else "#8fb8f5" for p in ordered],
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    figure.update_layout(
        height=300, margin=dict(l=10, r=40, t=30, b=10), title=dict(text="Top-5 classes", font=dict(size=14)),
        xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
    )
    return figure


def accuracy_figure(
    names: list[str], costs: list[float], scores: list[float], cost_title: str, score_title: str,
    published: list[tuple[str, float, float]], distilled: list[tuple[str, float, float]] = (),
) -> go.Figure:
    """Measured accuracy against a cost, the ringed front (no other point is both cheaper and more
    accurate), and published and distilled points as series of their own, each (name, cost, score)."""
    figure = go.Figure()
    if published:
        figure.add_trace(
            go.Scatter(
                x=[cost for _, cost, _ in published], y=[top1 for _, _, top1 in published], mode="markers",
                marker=dict(symbol="diamond", size=9, color="#8b949e"), name="TF-slim published (trained)",
                text=[name for name, _, _ in published],
                hovertemplate=f"%{{text}}<br>%{{x}}M MACs, top-1 %{{y}}%<extra>{TF_SLIM_SOURCE_SHORT}</extra>",
            )
        )
    front = pareto_front([(cost, -score) for cost, score in zip(costs, scores)])
    figure.add_trace(
        go.Scatter(
            x=[costs[index] for index in front], y=[scores[index] for index in front], mode="lines+markers",
            line=dict(dash="dash", color="#1f6feb", width=1.5),
            marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color="#1f6feb", width=1.5)),
            name="Pareto front (ringed)", hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=costs, y=scores, mode="markers+text", marker=dict(size=11, color="#1f6feb"), text=names,
            textposition="middle right", cliponaxis=False, name="Your configurations (inherited weights, no training)",
            hovertemplate="%{text}<br>%{x:.1f}<br>%{y:.1f}%<extra></extra>",
        )
    )
    if distilled:
        figure.add_trace(
            go.Scatter(
                x=[cost for _, cost, _ in distilled], y=[score for _, _, score in distilled], mode="markers",
                marker=dict(symbol="star", size=14, color="#2da44e"), name="After distillation",
                text=[name for name, _, _ in distilled], hovertemplate="%{text}<br>%{x:.1f}<br>%{y:.1f}%<extra></extra>",
            )
        )
    figure.update_xaxes(title_text=cost_title, rangemode="tozero")
    figure.update_yaxes(title_text=score_title, range=[0, 100])
    figure.update_layout(
        height=480,
        margin=dict(l=10, r=150, t=30, b=10),  # room for the rightmost point's name
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return figure


def block_importance_figure(labels: list[str], drops: list[float], metric: str) -> go.Figure:
    """One bar per residual block: how many points the network loses when that block alone is removed."""
    figure = go.Figure(
        go.Bar(
            x=labels, y=drops, marker_color="#bf3989", text=[f"{drop:.1f}" for drop in drops], textposition="outside",
            cliponaxis=False, hovertemplate="without %{x}: %{y:.1f} points<extra></extra>",
        )
    )
    figure.update_layout(
        height=360, margin=dict(l=10, r=10, t=30, b=10),
        yaxis=dict(title=f"{metric} lost (points)", rangemode="tozero"), xaxis=dict(title="residual block removed"),
    )
    return figure


def layer_time_figure(profile: LayerProfile) -> go.Figure:
    """Per layer kind, its share of the multiply-adds beside its share of the measured time."""
    kinds = profile.kinds()
    figure = go.Figure()
    for name, shares, color in (
        ("share of multiply-adds (paper convention)", [kind.madds_share for kind in kinds], "#8b949e"),
        ("share of measured time", [kind.time_share for kind in kinds], "#f0883e"),
    ):
        figure.add_bar(
            x=[kind.kind for kind in kinds], y=shares, name=name, marker_color=color,
            text=[f"{share:.0%}" for share in shares], textposition="outside", cliponaxis=False,
            hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>",
        )
    figure.update_layout(
        barmode="group", height=360, margin=dict(l=10, r=10, t=30, b=10),
        yaxis=dict(tickformat=".0%", rangemode="tozero", title="share of the network"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return figure


def pareto_figure(summaries: list[ConfigSummary], latency: bool) -> go.Figure:
    """MAdds (paper convention) against latency (else params); TF-slim's points as their own series."""
    figure = make_subplots(specs=[[{"secondary_y": latency}]])
    xs = [summary.madds_paper / 1e6 for summary in summaries]
    ys = [summary.latency.median_ms if latency else summary.params / 1e6 for summary in summaries]
    front = pareto_front(list(zip(xs, ys)))
    references = TF_SLIM_REFERENCES
    figure.add_trace(
        go.Scatter(
            x=[reference.macs_m for reference in references],
            y=[reference.pixel1_ms if latency else reference.params_m for reference in references],
            mode="markers",
            marker=dict(symbol="diamond", size=9, color="#8b949e"),
            name="TF-slim published (Pixel 1 latency)" if latency else "TF-slim published",
            text=[
                f"{reference.name}<br>top-1 {reference.top1}%, top-5 {reference.top5}%<br>"
                f"{reference.params_m}M params, Pixel 1 {reference.pixel1_ms} ms"
                for reference in references
            ],
            hovertemplate=f"%{{text}}<br>%{{x}}M MACs<extra>{TF_SLIM_SOURCE_SHORT}</extra>",
        ),
        secondary_y=latency or None,
    )
    figure.add_trace(
        go.Scatter(
            x=[xs[index] for index in front],
            y=[ys[index] for index in front],
            mode="lines+markers",
            line=dict(dash="dash", color="#1f6feb", width=1.5),
            marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color="#1f6feb", width=1.5)),
            name="Pareto front (ringed)",
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers+text",
            marker=dict(size=11, color="#1f6feb"),
            text=[summary.name for summary in summaries],
            textposition="middle right",
            cliponaxis=False,
            name="Your configurations (this CPU)" if latency else "Your configurations",
            hovertemplate="%{text}<br>%{x:.1f}M MAdds<br>%{y:.2f}<extra></extra>",
        )
    )
    figure.update_xaxes(title_text="Multiply-adds, paper convention (millions)", rangemode="tozero")
    figure.update_yaxes(
        title_text="Median latency on this CPU (ms)" if latency else "Parameters (millions)", rangemode="tozero"
    )
    if latency:
        figure.update_yaxes(
            title_text="Pixel 1 latency, TF-Lite (ms, published)", secondary_y=True, rangemode="tozero",
            showgrid=False, tickmode="auto",
        )
    figure.update_layout(
        height=480,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return figure


def colour_extent(activation: torch.Tensor) -> float:
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
    extent = extent or colour_extent(activation[channels])
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


def statistics_figure(table: pd.DataFrame, names: dict[str, str]) -> go.Figure:
    """Grouped bars per stage, one series for each of `table`'s columns named in `names` (column: legend name)."""
    colors = ["#1f6feb", "#8fb8f5", "#2da44e", "#9be9a8"]
    figure = go.Figure(
        [
            go.Bar(
                x=[f"stage {stage}" for stage in table["stage"]], y=table[column], name=name,
                marker_color=color, hovertemplate="%{x}: %{y:.1%}<extra>" + column + "</extra>",
            )
            for (column, name), color in zip(names.items(), colors)
        ]
    )
    figure.update_layout(
        barmode="group", height=330, margin=dict(l=10, r=10, t=10, b=10),
        yaxis=dict(tickformat=".0%", range=[0, 1], title="share"),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    return figure


def spiral_figure(trip: Reconstruction) -> go.Figure:
    """The paper's Figure 1: the input spiral beside its round trip through a ReLU, collapsed points crossed."""
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
    """What the ReLU round trip loses for each n of `curve`, the n of `trip` marked."""
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
