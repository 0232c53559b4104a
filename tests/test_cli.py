"""Every `mbv2` command on real inputs: in-process through main(), and the installed console script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLE_IMAGES, WEIGHTS_JSON, dev_images, run_cli
from mbv2.cli import main
from mbv2.compare import summarise
from mbv2.device import available_cores
from mbv2.spec import ArchSpec
from mbv2.sweep import SweepPoint

CONSOLE_SCRIPT = Path(sys.executable).with_name("mbv2")


def test_summary_prints_counts_memory_latency_and_the_published_point(capsys):
    assert main(["summary", "--width", "0.5", "--resolution", "160", "--latency", "--runs", "2", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "MobileNetV2 0.5/160: 1,968,680 parameters" in out
    assert "50.2M multiply-adds  (Paper convention" in out
    assert "MiB peak activations (float32, batch 1, at features.2.conv.1)" in out
    assert "latency on this CPU: median" in out and " ms (IQR " in out
    cores = available_cores()  # all of them by default, as the classifier uses them
    assert f"over 2 runs after 1 warm-up, batch 1, {cores} thread{'s' * (cores > 1)}, ONNX Runtime " in out
    assert "published: 50M MACs, 1.95M params, top-1 61.0%" in out and "research/slim/nets/mobilenet" in out


def test_summary_reads_a_spec_file_and_reports_bad_input(tmp_path, capsys):
    spec_file = tmp_path / "narrow.json"
    spec_file.write_text(ArchSpec(width_mult=0.35).to_json())
    assert main(["summary", "--spec", str(spec_file), "--resolution", "96"]) == 0
    assert "MobileNetV2 0.35/96: 1,677,128 parameters" in capsys.readouterr().out
    assert main(["summary", "--width", "9"]) == 2
    assert "Width multiplier must be between 0.1 and 4.0, got 9.0." in capsys.readouterr().err
    assert main(["summary", "--spec", str(tmp_path / "missing.json")]) == 2
    assert "Cannot read the spec file" in capsys.readouterr().err


def test_classify_prints_top_k_and_goes_on_past_a_bad_file(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MBV2_WEIGHTS", str(WEIGHTS_JSON))
    (path, truth), = [(path, truth) for path, truth in dev_images() if truth == "zebra"]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    assert main(["classify", str(SAMPLE_IMAGES / "cat.jpg"), str(broken), str(path), "--top", "2"]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("weights: local mobilenet_v2_1.0_224_tf2_ptq.pth")
    cat = lines.index(str(SAMPLE_IMAGES / "cat.jpg"))
    assert lines[cat + 1].split()[:3] == ["1.", "Egyptian", "cat"] and lines[cat + 2].lstrip().startswith("2.")
    fish = lines.index(str(path))
    assert truth in lines[fish + 1]
    assert "broken.jpg is not an image that can be read" in captured.err


def test_classify_compiled_prints_what_the_plain_fast_path_prints(monkeypatch, capsys):
    monkeypatch.setenv("MBV2_WEIGHTS", str(WEIGHTS_JSON))
    images = [str(SAMPLE_IMAGES / "cat.jpg"), str(SAMPLE_IMAGES / "rocket.jpg")]
    assert main(["classify", *images]) == 0
    plain = capsys.readouterr().out
    assert main(["classify", "--compile", *images]) == 0
    assert capsys.readouterr().out == plain


def test_classify_without_weights_says_what_to_do(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("MBV2_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torchvision cache
    assert main(["classify", str(SAMPLE_IMAGES / "cat.jpg")]) == 2
    assert "No pretrained weights are available offline. Pass --weights PATH" in capsys.readouterr().err
    assert main(["classify", "--weights", str(tmp_path / "nothing.pth"), str(SAMPLE_IMAGES / "cat.jpg")]) == 2
    assert "No weights file at" in capsys.readouterr().err


def test_sweep_writes_json_lines_equal_to_the_single_config_analysis(tmp_path, capsys):
    out = tmp_path / "grid.jsonl"
    assert main(["sweep", "--widths", "0.35", "--resolutions", "96", "--expansions", "6", "4", "--workers", "1",
                 "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["name"] for row in rows) == ["0.35/96 t=4", "0.35/96 t=6"]
    for row in rows:
        t = int(row["name"].rsplit("=", 1)[1])
        expected = summarise(SweepPoint(0.35, 96, t).config(ArchSpec())).as_row()
        assert {key: row[key] for key in expected if key in row} == {k: v for k, v in expected.items() if k in row}
        assert ArchSpec.from_json(row["spec"]).stages[1].t == t
    assert "wrote 2 rows" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["sweep", "--out", str(tmp_path / "grid.txt")])
    assert "must end in .csv or .jsonl" in capsys.readouterr().err


def test_installed_console_script_sweeps_in_parallel(tmp_path):
    out = tmp_path / "grid.csv"
    finished = subprocess.run(
        [str(CONSOLE_SCRIPT), "sweep", "--widths", "1.0", "0.5", "--resolutions", "96", "--workers", "2",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "2 configurations" in finished.stderr  # the progress bar
    header, *rows = out.read_text().splitlines()
    assert header.startswith("name,width_mult,resolution,params,madds_paper,madds_fvcore,peak_activation_bytes")
    assert sorted(row.split(",")[:5] for row in rows) == [
        ["0.5/96 t=6", "0.5", "96", "1968680", "18885440"],
        ["1.0/96 t=6", "1.0", "96", "3504872", "56289152"],
    ]


def run(argv: list[str]) -> int:
    """main(), with argparse's own exits (usage errors) returned like every other status."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


SPEC_FILES = {  # id: (the file's bytes, what the one-line message says)
    "stages a number": (b'{"stages": 5}', "stages must be a list of rows (t, c, n, s), got 5."),
    "stages null": (b'{"stages": null}', "stages must be a list of rows (t, c, n, s), got None."),
    "huge integer": (b'{"resolution": 1' + b"0" * 5000 + b"}", "an integer of 5001 digits"),
    "deep nesting": (b'{"stages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    "not utf-8": (b'{"padding": "\xff"}', "not UTF-8 text (byte 13 cannot be read)"),
    "nan": (b'{"width_mult": NaN}', "holds NaN, which is not a number"),
    "a list": (b"[1, 2]", "must hold a JSON object with fields such as stages"),
}


@pytest.mark.parametrize("content, message", SPEC_FILES.values(), ids=SPEC_FILES.keys())
def test_a_bad_spec_file_is_one_line_and_the_next_good_one_works(tmp_path, capsys, content, message):
    path = tmp_path / "spec.json"
    path.write_bytes(content)
    assert run(["summary", "--spec", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    path.write_text(ArchSpec(width_mult=0.35, resolution=96).to_json())
    assert run(["summary", "--spec", str(path)]) == 0


def test_a_spec_file_may_write_whole_numbers_as_floats(tmp_path, capsys):
    path = tmp_path / "spec.json"
    path.write_text('{"resolution": 160.0, "stages": [[1, 16, 1, 1], [6.0, 24, 2, 2]]}')
    assert run(["summary", "--spec", str(path)]) == 0
    assert "MobileNetV2 1.0/160" in capsys.readouterr().out


BAD_COMMANDS = {  # id: (arguments, what the one-line message says); {tmp} is a fresh folder
    "negative warm-up": (["summary", "--warmup", "-1"], "argument --warmup: must be at least 0, got -1"),
    "text width": (["summary", "--width", "wide"], "argument --width: invalid float value: 'wide'"),
    "endless spec": (["summary", "--spec", "/dev/zero"], "larger than 1,000,000 bytes"),
    "two problems": (["summary", "--width", "9", "--resolution", "9999"],
                     "got 9.0. Input resolution must be between 32 and 1024, got 9999."),
    "export onto a file": (["export", "--out", "{tmp}/taken", "--width", "0.35", "--resolution", "64"],
                           "Cannot make the folder {tmp}/taken: File exists."),
    "export under /dev/null": (["export", "--out", "/dev/null/out", "--width", "0.35", "--resolution", "64"],
                               "Cannot make the folder /dev/null/out: Not a directory."),
    "sweep into a missing folder": (["sweep", "--widths", "0.35", "--resolutions", "96", "--out", "{tmp}/no/rows.csv"],
                                    "The folder {tmp}/no does not exist; create it first"),
    "sweep grid too large": (["sweep", "--widths", *[f"0.{n}" for n in range(10, 60)], "--resolutions",
                              *map(str, range(96, 136)), "--expansions", "2", "6"],
                             "The grid has 4,000 points; the limit is 1,000."),
    "too many workers": (["sweep", "--widths", "0.35", "--resolutions", "96", "--workers", "1000"],
                         "Workers must be between 1 and"),
}


@pytest.mark.parametrize("argv, message", BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
def test_every_command_error_is_one_line_with_status_2(tmp_path, capsys, monkeypatch, argv, message):
    import mbv2.sweep

    monkeypatch.setattr(mbv2.sweep, "summarise", lambda *a: pytest.fail("computed a row that would be refused or lost"))
    (tmp_path / "taken").write_text("a file, not a folder")
    assert run([arg.replace("{tmp}", str(tmp_path)) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message.replace("{tmp}", str(tmp_path)) in err
    monkeypatch.undo()
    assert run(["summary", "--width", "0.35", "--resolution", "96"]) == 0


def test_summary_profile_prints_each_kinds_share_of_multiply_adds_and_of_time(capsys):
    assert main(["summary", "--profile", "--runs", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    shares = {line.split()[0]: line.split() for line in out.splitlines()[6:11]}
    assert list(shares) == ["stem", "expand", "depthwise", "project", "head"]
    assert shares["depthwise"][1:3] == ["20.7M", "6.9%"]
    assert float(shares["depthwise"][5].rstrip("%")) > 2 * 6.9  # measured: far more of the time than of the work
    assert "in no layer (residual adds, pooling, hooks)" in out and "over 3 runs after 1 warm-up" in out


def test_summary_lists_every_layer_and_prints_json():
    text = run_cli("summary", "--layers")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["module", "kind", "input", "(N,", "C,", "H,", "W)", "output", "params", "MAdds"]
    assert any(line.startswith("features.0 ") and "(1, 3, 224, 224)" in line and "(1, 32, 112, 112)" in line
               for line in lines)
    assert "MobileNetV2 1.0/224: 3,504,872 parameters" in text.stdout

    record = json.loads(run_cli("summary", "--layers", "--json", "--width", "0.5").stdout)
    assert record["spec"]["width_mult"] == 0.5 and record["latency_ms"] is None
    assert len(record["layers"]) == 54 and sum(layer["params"] for layer in record["layers"]) == record["params"]
    assert sum(layer["madds_paper"] for layer in record["layers"]) == record["madds_paper"]
