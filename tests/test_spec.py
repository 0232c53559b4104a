"""The spec validates every field with one message per problem, and round-trips through JSON."""

import json
from dataclasses import fields

import pytest
import torchvision.models._utils as tv_utils

from mbv2.errors import SpecError
from mbv2.spec import (
    COLUMNS, PAPER_STAGES, ArchSpec, Stage, stages_from_rows, make_divisible, parameter_estimate, shape_notes,
    spec_differences,
)
from mbv2.model import build_model


def problems_of(**changes) -> tuple[str, ...]:
    with pytest.raises(SpecError) as caught:
        ArchSpec(**changes)
    return caught.value.problems


def test_default_is_the_papers_table_2():
    spec = ArchSpec()
    assert [(s.t, s.c, s.n, s.s) for s in spec.stages] == [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)
    ]
    assert (spec.stem_out, spec.last_out, spec.resolution, spec.padding) == (32, 1280, 224, "symmetric")
    assert len(spec.block_plans) == 17
    assert spec.feature_sizes()[-1] == 7


def test_make_divisible_matches_torchvision():
    for value in [x / 4 for x in range(1, 20_000)]:
        assert make_divisible(value, 8) == tv_utils._make_divisible(value, 8)


@pytest.mark.parametrize("width, last", [(0.35, 1280), (0.5, 1280), (1.0, 1280), (1.4, 1792)])
def test_last_channels_kept_below_one_and_scaled_above(width, last):
    assert ArchSpec(width_mult=width).last_out == last


def test_json_round_trip():
    spec = ArchSpec(stages=PAPER_STAGES[:3] + (Stage(4, 48, 2, 2),), width_mult=0.75, resolution=160, padding="tf_same")
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert hash(ArchSpec.from_json(spec.to_json())) == hash(spec)


def test_json_names_the_table_stages_and_still_reads_the_old_name_blocks():
    spec = ArchSpec(stages=PAPER_STAGES[:3] + (Stage(4, 48, 2, 2),), width_mult=0.75, resolution=160)
    saved = spec.to_dict()
    assert "stages" in saved and "blocks" not in saved
    # A spec file (or weights sidecar) written before the rename says "blocks".
    old = json.dumps({**{k: v for k, v in saved.items() if k != "stages"}, "blocks": saved["stages"]})
    assert ArchSpec.from_json(old) == spec
    with pytest.raises(SpecError) as caught:
        ArchSpec.from_json('{"blocks": 5}')
    assert caught.value.problems == ("blocks must be a list of rows (t, c, n, s), got 5.",)  # the name the file used


def test_a_spec_with_both_stages_and_blocks_is_refused():
    rows = [[1, 16, 1, 1]]
    with pytest.raises(SpecError) as caught:
        ArchSpec.from_dict({"stages": rows, "blocks": rows})
    assert caught.value.problems == (
        "The spec has both fields stages and blocks, the old name of stages; keep only stages.",
    )


def test_parameter_estimate_is_exact():
    for spec in [ArchSpec(), ArchSpec(width_mult=0.35), ArchSpec(stages=(Stage(3, 40, 2, 2),), num_classes=10)]:
        assert parameter_estimate(spec) == sum(p.numel() for p in build_model(spec).parameters())


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"stages": ()}, "The bottleneck table is empty"),
        ({"stages": (Stage(0, 16, 1, 1),)}, "Row 1: expansion t must be between 1 and 32, got 0"),
        ({"stages": (Stage(1, -4, 1, 1),)}, "Row 1: channels c must be between 1 and 4096, got -4"),
        ({"stages": (Stage(1, 16, 0, 1),)}, "Row 1: repeats n must be between 1 and 32, got 0"),
        ({"stages": (Stage(1, 16, 1, 3),)}, "Row 1: stride s must be 1 or 2, got 3"),
        ({"stages": (Stage(1.5, 16, 1, 1),)}, "Row 1: expansion t must be a whole number, got 1.5"),
        ({"stages": (Stage(1, 16, 1, 1),) * 33}, "at most 32 are allowed"),
        ({"width_mult": 0.0}, "Width multiplier must be between 0.1 and 4.0, got 0.0"),
        ({"width_mult": "wide"}, "Width multiplier must be a number, got 'wide'"),
        ({"resolution": 16}, "Input resolution must be between 32 and 1024, got 16"),
        ({"resolution": 224.5}, "Input resolution must be a whole number, got 224.5"),
        ({"resolution": None}, "Input resolution is empty; type a whole number."),
        ({"stem_channels": 0}, "Stem channels must be between 1 and 4096"),
        ({"last_channels": 10**6}, "Last channels must be between 1 and 16384"),
        ({"round_nearest": 0}, "Channel divisor must be between 1 and 64"),
        ({"num_classes": 0}, "Number of classes must be between 1 and 50000"),
        ({"padding": "reflect"}, "Padding must be one of symmetric, tf_same, got 'reflect'"),
        ({"stages": (Stage(1, 4096, 1, 1), Stage(8, 4096, 1, 1))}, "Row 2 (expanded) would have 32,768 channels; the limit is 16,384"),
        ({"stages": (Stage(16, 1024, 1, 1),), "resolution": 1024}, "The largest feature map would hold"),
        ({"stages": (Stage(2, 4096, 32, 1),)}, "The model would have about"),
    ],
)
def test_each_validation_error_has_a_clear_message(changes, message):
    assert any(message in problem for problem in problems_of(**changes)), problems_of(**changes)


def test_several_problems_are_reported_together():
    problems = problems_of(stages=(Stage(0, 16, 1, 3),), width_mult=9.0)
    assert len(problems) == 3


def test_rows_from_a_person():
    assert stages_from_rows([{"t": 6.0, "c": "24", "n": 2, "s": 2}, [1, 16, 1, 1]]) == (Stage(6, 24, 2, 2), Stage(1, 16, 1, 1))
    with pytest.raises(SpecError) as caught:
        stages_from_rows([{"t": None, "c": 2.5, "n": "two", "s": 1}, "oops", {"t": None, "c": float("nan")}])
    assert caught.value.problems == (
        "Row 1: expansion t is empty; type a whole number.",
        "Row 1: channels c must be a whole number, got 2.5.",
        "Row 1: repeats n must be a whole number, got 'two'.",
        "Row 2: expected the four values t, c, n, s, got 'oops'.",
        "Row 3 is empty: fill in t, c, n and s, for example 6, 24, 2, 2.",
    )


def test_from_json_errors():
    with pytest.raises(SpecError, match="Not valid JSON"):
        ArchSpec.from_json("{")
    with pytest.raises(SpecError, match="must be an object"):
        ArchSpec.from_json("[1, 2]")
    with pytest.raises(SpecError, match="Unknown field"):
        ArchSpec.from_json('{"depth": 3}')


@pytest.mark.parametrize("resolution", [32, 96, 160, 224, 1024])
def test_no_shape_notes_when_every_halving_is_exact(resolution):
    assert shape_notes(ArchSpec(resolution=resolution)) == []


def test_shape_notes_explain_each_rounded_halving():
    # 200 -> 100 -> 50 -> 25 -> 13 -> 7: rows 4 and 6 get odd sides.
    assert shape_notes(ArchSpec(resolution=200)) == [
        "The network halves the map 5 times (once per stride-2 layer), so the sizes come out even "
        "only when the resolution is a multiple of 32, and 200 is not.",
        "Row 4's first block halves a 25×25 map: half of 25 is 12.5, so it gives 13×13 (rounded up).",
        "Row 6's first block halves a 13×13 map: half of 13 is 6.5, so it gives 7×7 (rounded up).",
        "So the last feature map is 7×7, not 200 ÷ 32 = 6.25; the network still works.",
    ]
    assert ArchSpec(resolution=200).feature_sizes()[-1] == 7


def test_shape_notes_follow_the_table_not_the_number_32():
    odd_stem = shape_notes(ArchSpec(resolution=225))
    assert "The stem halves a 225×225 map: half of 225 is 112.5, so it gives 113×113 (rounded up)." in odd_stem
    two_halvings = ArchSpec(stages=(Stage(1, 16, 1, 2),), resolution=100)  # 100 -> 50 -> 25: both exact
    assert shape_notes(two_halvings) == []
    six_halvings = ArchSpec(stages=PAPER_STAGES + (Stage(6, 320, 1, 2),))  # 224 -> ... -> 7 -> 4
    assert "multiple of 64, and 224 is not" in shape_notes(six_halvings)[0]


def test_columns_follow_the_order_of_a_rows_values():
    assert list(COLUMNS) == [field.name for field in fields(Stage)]
    assert [column.in_words for column in COLUMNS.values()] == ["expansion t", "channels c", "repeats n", "stride s"]


def test_link_form_is_compact_and_readable():
    assert ArchSpec().to_query() == {
        "stages": "1-16-1-1,6-24-2-2,6-32-3-2,6-64-4-2,6-96-3-1,6-160-3-2,6-320-1-1",
        "width": "1.0",
        "res": "224",
        "pad": "symmetric",
    }


def test_link_round_trip():
    spec = ArchSpec(stages=(Stage(1, 16, 1, 1), Stage(4, 40, 2, 2)), width_mult=0.75, resolution=160, padding="tf_same")
    assert ArchSpec().with_query(spec.to_query()) == spec


def test_an_old_link_with_blocks_reads_the_same_and_is_written_with_stages():
    spec = ArchSpec(stages=(Stage(1, 16, 1, 1), Stage(4, 40, 2, 2)), width_mult=0.75, resolution=160)
    assert ArchSpec().with_query({"blocks": "1-16-1-1,4-40-2-2", "width": "0.75", "res": "160"}) == spec
    assert "blocks" not in spec.to_query() and spec.to_query()["stages"] == "1-16-1-1,4-40-2-2"
    with pytest.raises(SpecError) as caught:
        ArchSpec().with_query({"blocks": "1-16-1-1,garbage"})
    assert caught.value.problems == (  # the message names the parameter the link has
        "Row 2 of blocks in the link is 'garbage'; write each row as t-c-n-s, for example 6-24-2-2.",
    )


def test_a_link_with_both_stages_and_blocks_is_refused():
    with pytest.raises(SpecError) as caught:
        ArchSpec().with_query({"stages": "1-16-1-1", "blocks": "1-16-1-1", "res": "x"})
    assert caught.value.problems == (
        "The link has both parameters stages and blocks, the old name of stages; keep only stages.",
        "res in the link must be a whole number, got 'x'.",
    )


def test_a_link_changes_only_what_it_names():
    base = ArchSpec(padding="tf_same", width_mult=0.5)
    assert base.with_query({"res": "192"}) == base.replace(resolution=192)
    assert base.with_query({}) == base


def test_every_unreadable_link_parameter_is_reported_at_once():
    with pytest.raises(SpecError) as caught:
        ArchSpec().with_query({"stages": "1-16-1-1,garbage,", "width": "wide", "res": "abc"})
    assert caught.value.problems == (
        "Row 2 of stages in the link is 'garbage'; write each row as t-c-n-s, for example 6-24-2-2.",
        "Row 3 of stages in the link is ''; write each row as t-c-n-s, for example 6-24-2-2.",
        "width in the link must be a number, got 'wide'.",
        "res in the link must be a whole number, got 'abc'.",
    )


@pytest.mark.parametrize(
    "query, message",
    [
        ({"stages": "1-16-1-1,6-x-2-2"}, "Row 2: channels c must be a whole number, got 'x'."),
        ({"res": "99999"}, "Input resolution must be between 32 and 1024, got 99999."),
        ({"pad": "reflect"}, "Padding must be one of symmetric, tf_same, got 'reflect'."),
    ],
)
def test_a_readable_link_is_still_validated(query, message):
    with pytest.raises(SpecError) as caught:
        ArchSpec().with_query(query)
    assert caught.value.problems == (message,)


def test_differences_in_words():
    paper = ArchSpec()
    assert spec_differences(paper, paper) == []
    edited = paper.replace(stages=PAPER_STAGES[:1] + (Stage(6, 32, 2, 2),) + PAPER_STAGES[2:6], width_mult=0.5)
    assert spec_differences(edited, paper) == ["table rows 2, 7", "width 0.5 instead of 1.0"]
    assert spec_differences(paper.replace(padding="tf_same"), paper) == ["padding tf_same instead of symmetric"]
    assert spec_differences(paper.replace(num_classes=10), paper) == ["stem, head or class count"]
