"""Every `mbv2` command on real inputs: in-process through main(), and the installed console script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLE_IMAGES, WEIGHTS_JSON, dev_images
from mbv2.cli import main
from mbv2.compare import summarise
from mbv2.spec import ArchSpec
from mbv2.sweep import SweepPoint

CONSOLE_SCRIPT = Path(sys.executable).with_name("mbv2")


def test_summary_prints_counts_memory_latency_and_the_published_point(capsys):
    assert main(["summary", "--width", "0.5", "--resolution", "160", "--latency", "--runs", "2", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "MobileNetV2 0.5/160: 1,968,680 parameters" in out
    assert "50.2M multiply-adds  (Paper convention" in out
    assert "MiB peak activations (float32, batch 1, at features.2.conv.1)" in out
    assert "latency on this CPU: median" in out and "over 2 runs after 1 warm-up, batch 1, 1 thread" in out
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


def test_sweep_writes_json_rows_equal_to_the_single_config_analysis(tmp_path, capsys):
    out = tmp_path / "grid.json"
    assert main(["sweep", "--widths", "0.35", "--resolutions", "96", "--expansions", "6", "4", "--workers", "1",
                 "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [row["t"] for row in rows] == [6, 4]
    for row in rows:
        expected = summarise(SweepPoint(0.35, 96, row["t"]).config(ArchSpec())).record()
        assert {key: row[key] for key in expected if key in row} == {k: v for k, v in expected.items() if k in row}
    assert "wrote 2 rows" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["sweep", "--out", str(tmp_path / "grid.txt")])
    assert "must end in .csv or .json" in capsys.readouterr().err


def test_installed_console_script_sweeps_in_parallel(tmp_path):
    out = tmp_path / "grid.csv"
    finished = subprocess.run(
        [str(CONSOLE_SCRIPT), "sweep", "--widths", "1.0", "0.5", "--resolutions", "96", "--workers", "2",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "2 configurations" in finished.stderr  # the progress bar
    header, first, second = out.read_text().splitlines()
    assert header.startswith("t,name,width_mult,resolution,params,madds_paper,madds_fvcore,peak_activation_bytes")
    assert first.startswith("6,1.0/96 t=6,1.0,96,3504872,56289152,")
    assert second.startswith("6,0.5/96 t=6,0.5,96,1968680,18885440,")
