"""Plotly figures for the views, and the number formats they share: pure functions, no streamlit."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mbv2.analysis import LAYER_KINDS, Analysis, Convention, LayerRow
from mbv2.classify import Prediction
from mbv2.compare import TF_SLIM_SOURCE_SHORT, pareto_front
from mbv2.layertime import LayerProfile

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
        if 0 < row.stage <= len(analysis.spec.blocks):
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
