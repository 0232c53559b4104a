"""Architecture: edit the paper's Table 2, see every layer's shape, parameters and multiply-adds."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd
import streamlit as st

import charts
import state
from heavy import run_queued
from widgets import bullets, literal
from mbv2.analysis import CONVENTIONS, Analysis, Convention, LayerRow, analyse
from mbv2.errors import MBV2Error, SpecError
from mbv2.jsonfile import json_text
from mbv2.layertime import PROFILE_SETTINGS, LayerProfile, profile_layers
from mbv2.spec import (
    COLUMNS, MAX_RESOLUTION, MAX_WIDTH, MIN_RESOLUTION, MIN_WIDTH, PADDINGS, ArchSpec, stages_from_rows,
    shape_notes,
)

PADDING_LABELS = {
    "symmetric": "symmetric (PyTorch, torchvision weights)",
    "tf_same": "tf_same (TensorFlow 'SAME', the shared TF weights)",
}
# The table is edited inside a form: nothing reruns while a person types, so no keystroke is lost to a
# rerun, and every button of the form applies the typed edits together with its own change. The applied
# table is then shown by a fresh editor (a new key), so the editor's state never outlives its table.
FORM_KEY = "stages_table_form"
EDITOR_KEY = "stages_table"
VERSION_KEY = "stages_table_version"
ROWS_KEY = "stages_table_rows"  # the table as applied; survives view switches
MOVE_KEY = "stages_table_move"
PROFILES_KEY = "layer_time_profiles"  # ArchSpec -> LayerProfile, measured in this session
APPLY_KEY = "stages_table_apply"
IMPORT_KEY, IMPORT_ERROR_KEY = "spec_import", "spec_import_error"
DELETE_COLUMN = "delete"
# Each header whole and the whole table within the editor's column at 1280 px.
COLUMN_PIXELS, DELETE_PIXELS = {"t": 124, "c": 100, "n": 94, "s": 84}, 58
WIDTH_KEY, RESOLUTION_KEY, PADDING_KEY, CONVENTION_KEY = "width_mult", "resolution", "padding", "madds_convention"


def render() -> None:
    st.header("Architecture")
    st.markdown(
        "MobileNetV2 is the paper's Table 2: each row stacks **n** inverted residual blocks that widen their "
        "input **t** times, filter it with a cheap depthwise 3×3, and project it back down to **c** channels. "
        "Edit the table and see what every layer costs."
    )
    spec = state.current_spec()
    editor_column, controls_column = st.columns([3, 2], gap="large")
    with controls_column:
        width, resolution, padding, convention = _controls(spec)
    with editor_column:
        rows = _table_editor(spec)
    try:
        edited = spec.replace(stages=stages_from_rows(rows), width_mult=width, resolution=resolution, padding=padding)
    except SpecError as error:
        with controls_column:
            st.error(f"**This architecture cannot be built:**\n{bullets(error.problems)}")
            st.caption("The numbers below are still those of the last architecture that could be built.")
    else:
        if edited != spec:
            state.set_spec(edited)
            spec = edited
        if notes := shape_notes(spec):
            with controls_column:
                st.info(bullets(notes), icon=":material/straighten:")
    with st.spinner("Counting shapes, parameters and multiply-adds with fvcore…"):
        # `analyse` keeps its own process-wide cache (see state.py), so an edit back is instant here too.
        analysis, paper = analyse(spec), analyse(ArchSpec())
    _results(analysis, paper, convention)
    _layer_times(spec)


def _controls(spec: ArchSpec) -> tuple[float, int, str, Convention]:
    # Seeding the keys (instead of passing value=) lets the reset button overwrite them.
    st.session_state.setdefault(WIDTH_KEY, float(spec.width_mult))
    st.session_state.setdefault(RESOLUTION_KEY, spec.resolution)
    st.session_state.setdefault(PADDING_KEY, spec.padding)
    st.session_state.setdefault(CONVENTION_KEY, "paper")
    # No min/max on these inputs: Streamlit silently puts an out-of-range value back to the minimum,
    # while ArchSpec refuses it with a message that names the limit.
    width_column, resolution_column = st.columns(2)
    width = width_column.number_input(
        "Width multiplier", step=0.05, format="%.2f", key=WIDTH_KEY,
        help=f"Scales every layer's channels (rounded to multiples of 8), from {MIN_WIDTH} to {MAX_WIDTH}. "
        "The paper tries 0.35 to 1.4.",
    )
    resolution = resolution_column.number_input(
        "Input resolution", step=16, key=RESOLUTION_KEY,
        help=f"Side of the square input image in pixels, from {MIN_RESOLUTION} to {MAX_RESOLUTION}. "
        "The paper tries 96 to 224.",
    )
    padding = st.radio(
        "Padding of stride-2 convolutions", PADDINGS, format_func=PADDING_LABELS.get, key=PADDING_KEY,
        horizontal=True, help="Changes no count, but weights only work well with the padding they were trained with.",
    )
    convention = st.radio("Count multiply-adds as", list(CONVENTIONS), format_func=CONVENTIONS.get, key=CONVENTION_KEY)
    st.button("Reset to the paper's Table 2", icon=":material/restart_alt:", on_click=_reset,
              help="The paper's MobileNetV2: Table 2, width 1.0, resolution 224, with the padding of the weights "
              "at hand.")
    st.file_uploader(
        "Load an architecture (JSON)", type=["json"], key=IMPORT_KEY, on_change=_import_spec,
        help="A spec as Compare's \"Spec (JSON)\" download (or `ArchSpec.to_json`) writes it: stages, width_mult, "
        "resolution, padding.",
    )
    if message := st.session_state.get(IMPORT_ERROR_KEY):
        st.error(message)
    return width, int(resolution), padding, convention


def _table_editor(spec: ArchSpec) -> list[dict[str, Any]]:
    rows = st.session_state.setdefault(ROWS_KEY, _rows_of(spec))
    with st.form(FORM_KEY, border=False):
        table = pd.DataFrame(rows, columns=list(COLUMNS), dtype=float).assign(**{DELETE_COLUMN: False})
        st.data_editor(
            # Float columns: the browser's cells (step=1) only take whole numbers, but the server parses
            # an edit of an int column with int(), silently turning any 2.5 sent to it into 2; as a float
            # it reaches stages_from_rows, which says what is wrong.
            table,
            key=_editor_key(),
            num_rows="fixed",
            hide_index=True,
            column_config={
                **{
                    name: st.column_config.NumberColumn(
                        f"{column.letter} · {column.word}", help=column.help, step=1, format="%d",
                        width=COLUMN_PIXELS[name],
                    )
                    for name, column in COLUMNS.items()
                },
                DELETE_COLUMN: st.column_config.CheckboxColumn(
                    "✕", help="Delete: tick the rows to delete, then press Apply.", width=DELETE_PIXELS
                ),
            },
        )
        _row_tools(len(rows))
    return rows


def _editor_key() -> str:
    return f"{EDITOR_KEY}_{st.session_state.setdefault(VERSION_KEY, 0)}"


def _rows_of(spec: ArchSpec) -> list[dict[str, Any]]:
    return [asdict(stage) for stage in spec.stages]


def _row_tools(row_count: int) -> None:
    # Two lines of buttons, so that none is cut at 1280 px. Their explanation is a caption, not a tooltip:
    # a button's tooltip stays up after the click, over the table's last row, and takes the next click there.
    apply_column, add_column = st.columns(2)
    apply_column.form_submit_button(
        "Apply", icon=":material/check:", type="primary", key=APPLY_KEY, on_click=_apply_edits, width="stretch"
    )
    add_column.form_submit_button("Add row", icon=":material/add:", on_click=_add_row, width="stretch")
    pick_column, up_column, down_column = st.columns(3, vertical_alignment="bottom")
    pick_column.selectbox(
        "Row", range(1, row_count + 1), format_func=lambda n: f"row {n}", key=MOVE_KEY,
        help="Rows run top to bottom through the network: the row to move, or to copy into a new row below it.",
    )
    up_column.form_submit_button("Up", icon=":material/arrow_upward:", on_click=_move_row, args=(-1,),
                                 width="stretch")
    down_column.form_submit_button("Down", icon=":material/arrow_downward:", on_click=_move_row, args=(1,),
                                   width="stretch")
    st.caption(
        "Edits are applied together when you press Apply (or any button here), so nothing typed is lost. "
        "Add row copies the chosen row below it, to edit from there."
    )


def _typed_rows() -> list[dict[str, Any]]:
    """The applied table with the edits typed since, less the rows ticked for deletion."""
    edits = st.session_state.get(_editor_key(), {}).get("edited_rows", {})
    edits = {int(index): changes for index, changes in edits.items()}  # JSON from the browser has text keys
    typed = [{**row, **edits.get(index, {})} for index, row in enumerate(st.session_state[ROWS_KEY])]
    return [{name: _number(row.get(name)) for name in COLUMNS} for row in typed if not row.get(DELETE_COLUMN)]


def _number(cell: Any) -> float | None:
    """A cell as a number column holds it: what does not parse as a number is an empty cell."""
    try:
        return float(cell)
    except (TypeError, ValueError):
        return None


def _chosen_row(rows: list[dict[str, Any]]) -> int:
    """The index of the row picked in the form, kept within the table (ticked rows may have gone)."""
    return min(max((st.session_state.get(MOVE_KEY) or 1) - 1, 0), max(len(rows) - 1, 0))


def _apply_edits() -> None:
    _replace_table(_typed_rows())


def _move_row(offset: int) -> None:
    rows = _typed_rows()
    if not rows:
        _replace_table(rows)
        return
    index = _chosen_row(rows)
    target = min(max(index + offset, 0), len(rows) - 1)
    rows[index], rows[target] = rows[target], rows[index]
    _replace_table(rows, chosen=target)


def _add_row() -> None:
    rows = _typed_rows()
    index = _chosen_row(rows)
    above = rows[index] if rows else asdict(ArchSpec().stages[-1])  # an empty table starts from the paper's
    rows.insert(index + 1, dict(above))
    _replace_table(rows, chosen=index + 1)


def _reset() -> None:
    _show(state.default_spec())


def _import_spec() -> None:
    upload = st.session_state.get(IMPORT_KEY)
    st.session_state[IMPORT_ERROR_KEY] = None
    if upload is None:
        return
    try:
        spec = ArchSpec.from_json(json_text(upload.getvalue()))
    except SpecError as error:
        st.session_state[IMPORT_ERROR_KEY] = f"**{literal(upload.name)} cannot be loaded:**\n{bullets(error.problems)}"
    except ValueError as error:  # too large, or not UTF-8
        st.session_state[IMPORT_ERROR_KEY] = f"**{literal(upload.name)} cannot be loaded:** {error}"
    else:
        _show(spec)


def _show(spec: ArchSpec) -> None:
    """Make `spec` the current architecture, its table and controls included."""
    _replace_table(_rows_of(spec))
    st.session_state[WIDTH_KEY] = float(spec.width_mult)
    st.session_state[RESOLUTION_KEY] = spec.resolution
    st.session_state[PADDING_KEY] = spec.padding
    state.set_spec(spec)


def _replace_table(rows: list[dict[str, Any]], chosen: int | None = None) -> None:
    st.session_state[ROWS_KEY] = rows
    st.session_state[VERSION_KEY] += 1
    if chosen is not None:
        st.session_state[MOVE_KEY] = chosen + 1


def _results(analysis: Analysis, paper: Analysis, convention: Convention) -> None:
    madds, paper_madds = analysis.madds(convention), paper.madds(convention)
    spec = analysis.spec
    columns = st.columns(4)
    columns[0].metric(
        "Multiply-adds", charts.count_text(madds), border=True, **_versus_paper(madds, paper_madds),
        help=f"{madds:,} multiply-adds ({CONVENTIONS[convention]}); the paper's 1.0/224 has {paper_madds:,}.",
    )
    columns[1].metric(
        "Parameters", f"{analysis.params:,}", border=True, **_versus_paper(analysis.params, paper.params),
        help=f"Weights and BatchNorm scales and shifts; the paper's 1.0/224 has {paper.params:,}.",
    )
    blocks, paper_blocks = len(spec.block_plans), len(paper.spec.block_plans)
    columns[2].metric(
        "Inverted residual blocks", blocks, border=True, delta_color="off", delta_arrow="off",
        delta=f"{blocks - paper_blocks:+d} vs the paper" if blocks != paper_blocks else "same as the paper",
        help="The sum of n over the table's rows.",
    )
    columns[3].metric(
        "Last feature map", charts.shape_text(_last_conv(analysis).output_shape), border=True,
        delta=f"the paper's: {charts.shape_text(_last_conv(paper).output_shape)}", delta_color="off",
        delta_arrow="off", help="Height × width × channels after the last 1×1 convolution, before global pooling.",
    )
    cost_column, width_column = st.columns([3, 2], gap="medium")
    cost_column.plotly_chart(charts.cost_figure(analysis, convention))
    width_column.plotly_chart(charts.channel_figure(analysis))
    st.subheader("Every layer")
    layers = layer_table(analysis, convention)
    st.dataframe(
        layers,
        hide_index=True,
        height=420,
        column_config={
            "params": st.column_config.NumberColumn("params", format="localized"),
            "MAdds": st.column_config.NumberColumn("MAdds", format="localized", help=CONVENTIONS[convention]),
            "share": st.column_config.ProgressColumn(
                "share of MAdds", format="percent", min_value=0.0, max_value=layers["share"].max(), width="medium"
            ),
        },
    )


def _layer_times(spec: ArchSpec) -> None:
    """Measured, not counted: seconds of this server's CPU, so only on a click, with a bar and a Cancel."""
    st.subheader("Where the time goes")
    st.markdown(
        "Multiply-adds are not time. Time every layer on this server's CPU and compare each kind's share of the "
        "time with its share of the multiply-adds: depthwise convolutions do little arithmetic per byte they move."
    )
    profiles: dict[ArchSpec, LayerProfile] = st.session_state.setdefault(PROFILES_KEY, {})
    if spec not in profiles:
        if not st.button("Measure time per layer", key="layer_time_measure", help=f"{PROFILE_SETTINGS.runs} forward "
                         "passes with a clock around every layer, and as many without, after a warm-up."):
            return
        st.button("Cancel", key="layer_time_cancel", help="Stops at once; nothing is kept.")
        bar = st.progress(0.0, text="Timing every layer…")
        try:
            profiles[spec] = run_queued(
                "Timing every layer", lambda report: profile_layers(spec, progress=report),
                lambda done, total: bar.progress(done / total, text=f"Forward pass {done} of {total}"),
                key=("layer times", spec),
            )
        except MBV2Error as error:
            bar.empty()
            st.error(str(error))
            return
        st.rerun()
    profile = profiles[spec]
    st.plotly_chart(charts.layer_time_figure(profile), key="layer_time_chart")
    depthwise = next((kind for kind in profile.kinds() if kind.kind == "depthwise"), None)
    finding = (
        f"Depthwise convolutions: {depthwise.madds_share:.0%} of the multiply-adds, {depthwise.time_share:.0%} of the "
        "time. " if depthwise else ""
    )
    settings = profile.hooked.settings
    st.caption(
        f"{finding}Each layer is a convolution with its BatchNorm and ReLU6 (head: the last 1×1 convolution and the "
        f"classifier), timed with forward hooks; median of {settings.runs} runs, {profile.unattributed_ms:.2f} ms per "
        f"pass in no layer (residual adds, pooling, the hooks). Random weights, batch {settings.batch_size}, "
        f"{settings.threads} thread(s), {profile.hooked.machine}; other visitors' work slows it, so compare shares, "
        "not milliseconds."
    )


def _versus_paper(value: int, paper: int) -> dict[str, str]:
    """st.metric's delta: the change against the paper's 1.0/224, red when it costs more."""
    if value == paper:
        return {"delta": "same as the paper", "delta_color": "off", "delta_arrow": "off"}
    change = (value - paper) / paper
    return {"delta": f"{change:+.1%} vs the paper" if abs(change) < 0.1 else f"{change:+.0%} vs the paper",
            "delta_color": "inverse"}


def layer_table(analysis: Analysis, convention: Convention) -> pd.DataFrame:
    total = analysis.madds(convention)
    return pd.DataFrame(
        [
            {
                "layer": charts.position_text(row),
                "table row": charts.stage_text(row),
                "kind": row.kind,
                "input": charts.shape_text(row.input_shape),
                "output": charts.shape_text(row.output_shape),
                "params": row.params,
                "MAdds": row.madds(convention),
                "share": row.madds(convention) / total,
            }
            for row in analysis.rows
        ]
    )


def _last_conv(analysis: Analysis) -> LayerRow:
    return next(row for row in analysis.rows if row.kind == "last conv")
