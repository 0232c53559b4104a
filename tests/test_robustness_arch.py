"""Bad architectures, typed into the Architecture view or arriving in a link, as a student makes them.

Each one must get a message that names the row, the column or the limit; no traceback; nothing
built for it (limits are checked on paper, before any tensor exists); the last valid totals stay
on screen; and the next good input works again.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import mbv2.analysis
from conftest import PAPER_PARAMS, app_test, edit_table, metrics, rss_bytes
from mbv2.spec import ArchSpec

Action = Callable[[object], object]  # one user input applied to an AppTest, which it reruns


def table(**edits) -> Action:
    return lambda at: edit_table(at, **edits)


def number(key: str, value: float) -> Action:
    return lambda at: at.number_input(key=key).set_value(value).run()


def paper_table_then(**edits) -> Action:
    """The table keeps a bad edit as typed, so a fix starts from the paper's table, as a person would."""

    def fix(at):
        next(button for button in at.button if button.label == "Reset to the paper's Table 2").click().run()
        return edit_table(at, **edits)

    return fix


# A good input after a bad one, and a total it must change.
FIX_TABLE = (paper_table_then(edited_rows={6: {"c": 640}}), "Parameters", "4,222,312")
FIX_RESOLUTION = (number("resolution", 160), "Last feature map", "5×5×1280")
FIX_WIDTH = (number("width_mult", 0.5), "Parameters", "1,968,680")
LAYER_LIMIT = "the limit is 16,384"
FEATURE_MAP_LIMIT = "the limit is 67,108,864 values (256 MiB)"
WORK_LIMIT = "billion multiply-adds; the limit is 25 billion"
MEMORY_LIMIT = "of feature maps; the limit is 4.0 GiB"
# t = 6, c = 40, three repeats at stride 1 right after the stem of a 1024 input: every map is within
# the single-map limit, but fvcore's trace would hold about 9 GiB of them.
WIDE_ROWS_LINK = {"stages": "1-16-1-1,6-40-3-1,6-320-1-2", "res": "1024"}


@pytest.fixture
def builds(monkeypatch) -> list[ArchSpec]:
    """Every architecture the app builds a model for, to count its shapes."""
    built: list[ArchSpec] = []
    real = mbv2.analysis.build_model

    def recording(spec: ArchSpec, **options):
        built.append(spec)
        return real(spec, **options)

    monkeypatch.setattr(mbv2.analysis, "build_model", recording)
    return built


def assert_the_next_good_input_works(at, fix) -> None:
    good, label, value = fix
    good(at)
    assert not at.exception
    assert not at.error
    assert metrics(at)[label] == value


BAD_INPUTS = {  # id: (bad input, what the message says, the good input that follows)
    "empty table": (table(deleted_rows=range(7)), "The bottleneck table is empty: add at least one row", FIX_TABLE),
    "missing cell": (table(edited_rows={2: {"c": None}}), "Row 3: channels c is empty; type a whole number.",
                     FIX_TABLE),
    "cleared row": (table(edited_rows={6: dict.fromkeys("tcns")}), "Row 7 is empty: fill in t, c, n and s", FIX_TABLE),
    "non-integer": (table(edited_rows={1: {"t": 2.5}}), "Row 2: expansion t must be a whole number, got 2.5.",
                    FIX_TABLE),
    # Streamlit's number column cannot hold text: what it cannot parse arrives as an empty cell.
    "text": (table(edited_rows={1: {"n": "two"}}), "Row 2: repeats n is empty; type a whole number.", FIX_TABLE),
    "t zero": (table(edited_rows={1: {"t": 0}}), "Row 2: expansion t must be between 1 and 32, got 0.", FIX_TABLE),
    "c negative": (table(edited_rows={1: {"c": -24}}), "Row 2: channels c must be between 1 and 4096, got -24.",
                   FIX_TABLE),
    "n zero": (table(edited_rows={1: {"n": 0}}), "Row 2: repeats n must be between 1 and 32, got 0.", FIX_TABLE),
    "n negative": (table(edited_rows={1: {"n": -2}}), "Row 2: repeats n must be between 1 and 32, got -2.", FIX_TABLE),
    "stride 3": (table(edited_rows={2: {"s": 3}}), "Row 3: stride s must be 1 or 2, got 3.", FIX_TABLE),
    "absurd c": (table(edited_rows={6: {"c": 100_000}}), "Row 7: channels c must be between 1 and 4096, got 100000.",
                 FIX_TABLE),
    # Every cell is in range, but row 7 would expand 4096 channels 6 times.
    "absurd expansion": (table(edited_rows={5: {"c": 4096}}),
                         f"Row 7 (expanded) would have 24,576 channels; {LAYER_LIMIT}.", FIX_TABLE),
    # Every cell is in range, but row 2 would expand 1024 channels 6 times on a 112×112 map.
    "feature map too large": (table(edited_rows={0: {"c": 1024}}),
                              f"The largest feature map would hold 77,070,336 values (0.3 GiB); {FEATURE_MAP_LIMIT}.",
                              FIX_TABLE),
    # Every map fits, but 32 wide blocks at 112×112 would be 111 billion multiply-adds and 25 GiB of trace.
    "too much work": (table(edited_rows={1: {"t": 32, "c": 64, "n": 32, "s": 1}}), WORK_LIMIT, FIX_TABLE),
    "absurd resolution": (number("resolution", 100_000), "Input resolution must be between 32 and 1024, got 100000.",
                          FIX_RESOLUTION),
    "resolution zero": (number("resolution", 0), "Input resolution must be between 32 and 1024, got 0.",
                        FIX_RESOLUTION),
    "resolution negative": (number("resolution", -224), "Input resolution must be between 32 and 1024, got -224.",
                            FIX_RESOLUTION),
    "absurd width": (number("width_mult", 100.0), "Width multiplier must be between 0.1 and 4.0, got 100.0.",
                     FIX_WIDTH),
}


@pytest.mark.parametrize("bad, message, fix", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_a_bad_input_is_explained_and_the_next_good_one_works(builds, bad, message, fix):
    at = app_test(view="architecture").run()
    assert not at.exception
    last_valid, link = metrics(at), dict(at.query_params)
    builds.clear()

    bad(at)
    assert not at.exception
    [error] = at.error
    assert message in error.value
    assert metrics(at) == last_valid
    assert dict(at.query_params) == link  # the link still describes what is shown
    assert builds == []  # refused on paper: no model was made for it
    assert_the_next_good_input_works(at, fix)


BAD_LINKS = {  # id: (query, what the message says)
    "absurd res": ({"res": "99999"}, "Input resolution must be between 32 and 1024, got 99999."),
    "text res": ({"res": "abc"}, "res in the link must be a whole number, got 'abc'."),
    "text width": ({"width": "wide"}, "width in the link must be a number, got 'wide'."),
    "garbage stages": ({"stages": "garbage"}, "Row 1 of stages in the link is 'garbage'; write each row as t-c-n-s"),
    "no stages": ({"stages": ""}, "Row 1 of stages in the link is ''"),
    "text cell": ({"stages": "1-16-1-1,6-x-2-2"}, "Row 2: channels c must be a whole number, got 'x'."),
    "absurd c": ({"stages": "1-100000-1-1"}, "Row 1: channels c must be between 1 and 4096, got 100000."),
    # 1024 is allowed, but with t=32 row 2's expansion would hold 512×512×512 values.
    "feature map too large": ({"stages": "1-16-1-1,32-24-2-2", "res": "1024"},
                              f"would hold 134,217,728 values (0.5 GiB); {FEATURE_MAP_LIMIT}."),
    "too much memory": (WIDE_ROWS_LINK, MEMORY_LIMIT),
}


@pytest.mark.parametrize("query, message", BAD_LINKS.values(), ids=BAD_LINKS.keys())
def test_a_bad_link_is_explained_and_the_paper_shown(builds, query, message):
    at = app_test(view="architecture", **query).run()
    assert not at.exception
    [warning] = at.warning
    assert message in warning.value
    assert metrics(at)["Parameters"] == PAPER_PARAMS
    assert not set(query) & set(at.query_params)  # the broken parameters leave the link
    assert set(builds) <= {ArchSpec()}  # the paper's model at most (if not cached yet), never the bad one
    assert_the_next_good_input_works(at, FIX_TABLE)


def test_a_resolution_that_does_not_halve_evenly_works_and_is_explained():
    at = app_test(view="architecture").run()
    assert not at.info  # 224 = 7 × 32: every halving is exact
    at.number_input(key="resolution").set_value(200).run()
    assert not at.exception
    assert not at.error
    assert metrics(at)["Last feature map"] == "7×7×1280"
    [note] = at.info
    assert "Row 4's first block halves a 25×25 map: half of 25 is 12.5, so it gives 13×13 (rounded up)." in note.value
    assert "not 200 ÷ 32 = 6.25" in note.value
    at.number_input(key="resolution").set_value(224).run()
    assert not at.info


# Above what refusing on paper allocates (nothing), below what analysing the design would (about 9 GiB).
MAX_GROWTH_BYTES = 200 * 2**20


def test_memory_stays_bounded_when_links_ask_for_huge_designs():
    at = app_test(view="architecture").run()
    baseline = rss_bytes()
    for resolution in ("1024", "960", "896"):  # three visitors' links in a row, each its own design
        link = app_test(view="architecture", **{**WIDE_ROWS_LINK, "res": resolution}).run()
        assert not link.exception and MEMORY_LIMIT in link.warning[0].value
    growth = rss_bytes() - baseline
    assert growth < MAX_GROWTH_BYTES, f"the process grew by {growth / 2**20:.0f} MiB"
    assert_the_next_good_input_works(at, FIX_TABLE)
