"""Sweeps on Dask: a real `dask scheduler` and `dask worker`, and a resumed sweep that computes only what is missing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import mbv2.sweep
from conftest import DEV_IMAGES, SAMPLE_IMAGES, WEIGHTS_JSON
from mbv2.cli import main
from mbv2.sweeptable import read_table

DASK = Path(sys.executable).with_name("dask")
COUNTS = ("name", "params", "madds_paper", "madds_fvcore", "peak_activation_bytes", "spec")
# The calibration named, not left to $MBV2_CALIBRATION, which the app's tests set for this process.
ACCURACY = ["--images", str(DEV_IMAGES), "--limit", "10", "--weights", str(WEIGHTS_JSON), "--calibration",
            str(SAMPLE_IMAGES)]
GRID = ["--widths", "0.5", "0.75", "--resolutions", "96"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rows_by_name(path: Path) -> dict[str, dict]:
    return {row["name"]: row for row in read_table(path.read_bytes(), path.suffix, path.name)}


@pytest.fixture
def dask_cluster(tmp_path):
    """`dask scheduler` and one `dask worker` on localhost, with a prediction cache of the worker's own."""
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "MBV2_CACHE": str(tmp_path / "worker-cache"), "OMP_WAIT_POLICY": "PASSIVE"}
    logs = open(tmp_path / "dask.log", "w")
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        stdout=logs, stderr=subprocess.STDOUT, env=env,
    )
    worker = subprocess.Popen(
        [str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard"],
        stdout=logs, stderr=subprocess.STDOUT, env=env,
    )
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=120)
        yield address, tmp_path / "worker-cache"
    finally:
        for process in (worker, scheduler):  # the worker first, so it does not wait for a scheduler that is gone
            process.terminate()
            process.wait(timeout=60)
        logs.close()


@pytest.mark.slow
def test_a_sweep_through_a_dask_scheduler_matches_the_local_one_and_scores_top1(tmp_path, dask_cluster, capsys):
    address, worker_cache = dask_cluster
    remote, local = tmp_path / "remote.jsonl", tmp_path / "local.jsonl"
    assert main(["sweep", *GRID, "--scheduler", address, "--out", str(remote), *ACCURACY]) == 0
    assert main(["sweep", *GRID, "--workers", "1", "--out", str(local), *ACCURACY]) == 0
    remote_rows, local_rows = rows_by_name(remote), rows_by_name(local)
    assert sorted(remote_rows) == ["0.5/96 t=6", "0.75/96 t=6"]
    for name, row in remote_rows.items():
        assert {key: row[key] for key in COUNTS} == {key: local_rows[name][key] for key in COUNTS}
        assert row["images"] == 10 and 0 <= row["top1"] <= 100 and row["top1"] == local_rows[name]["top1"]
    assert remote_rows["0.75/96 t=6"]["top1"] == 20.0  # 2 of the 10 dev images, inherited weights, no training
    assert list(worker_cache.rglob("*.json")), "the worker, not this process, classified the images"
    assert "top-1 %" in capsys.readouterr().out


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_loses_nothing(tmp_path, dask_cluster):
    """The worker process dies (SIGKILL) after the first row; its nanny starts another and Dask reruns the task."""
    from distributed import Client

    address, _ = dask_cluster
    out = tmp_path / "grid.jsonl"
    widths = ["0.35", "0.5", "0.75", "1.0"]
    sweep = threading.Thread(target=main, args=(["sweep", "--widths", *widths, "--resolutions", "96", "128",
                                                 "--scheduler", address, "--out", str(out), *ACCURACY],))
    sweep.start()
    while sweep.is_alive() and not (out.exists() and out.read_text().count("\n")):
        time.sleep(0.05)
    with Client(address, timeout=30) as client:
        (pid,) = client.run(os.getpid).values()
        os.kill(pid, signal.SIGKILL)
        sweep.join(timeout=600)
        assert len(client.run(os.getpid)) == 1 and pid not in client.run(os.getpid).values()  # a new worker
    assert len(rows_by_name(out)) == len(out.read_text().splitlines()) == len(widths) * 2  # all, each once


def test_an_unreachable_scheduler_is_one_line(capsys):
    assert main(["sweep", *GRID, "--scheduler", f"tcp://127.0.0.1:{free_port()}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot reach the Dask scheduler") and "dask scheduler" in err and err.count("\n") == 1


def test_a_resumed_sweep_computes_only_the_missing_configurations(tmp_path, monkeypatch, capsys):
    computed: list[str] = []
    summarise = mbv2.sweep.summarise

    def counting(config, latency=None):
        computed.append(config.name)
        return summarise(config, latency)

    monkeypatch.setattr(mbv2.sweep, "summarise", counting)  # one worker runs in this process, so it sees this
    out = tmp_path / "grid.csv"
    assert main(["sweep", "--widths", "0.35", "0.5", "--resolutions", "96", "--workers", "1", "--out", str(out)]) == 0
    assert sorted(computed) == ["0.35/96 t=6", "0.5/96 t=6"]
    first = out.read_text()
    with open(out, "a") as table:  # a sweep killed while it wrote its next row
        table.write('0.75/96 t=6,0.75,96,2636')

    computed.clear()
    assert main(["sweep", "--widths", "0.35", "0.5", "0.75", "1.0", "--resolutions", "96", "--workers", "1",
                 "--out", str(out)]) == 0
    assert sorted(computed) == ["0.75/96 t=6", "1.0/96 t=6"]
    assert out.read_text().startswith(first)  # appended, never rewritten
    rows = rows_by_name(out)
    assert sorted(rows) == ["0.35/96 t=6", "0.5/96 t=6", "0.75/96 t=6", "1.0/96 t=6"]
    assert rows["0.75/96 t=6"]["params"] == 2_636_424
    assert f"wrote 2 rows to {out} (2 already in {out})" in capsys.readouterr().out

    computed.clear()
    assert main(["sweep", "--widths", "0.35", "1.0", "--resolutions", "96", "--workers", "1", "--out", str(out)]) == 0
    assert computed == []


def test_a_specs_file_and_per_row_repeats(tmp_path, capsys):
    specs = tmp_path / "specs.jsonl"
    specs.write_text(
        json.dumps({"name": "short", "stages": [[1, 16, 1, 1], [6, 24, 1, 2]], "resolution": 96}) + "\n"
        + json.dumps({"width_mult": 0.5, "resolution": 128}) + "\n"
    )
    out = tmp_path / "specs.csv"
    assert main(["sweep", "--specs", str(specs), "--workers", "1", "--out", str(out)]) == 0
    assert sorted(rows_by_name(out)) == ["#2 0.5/128", "short"]
    out = tmp_path / "repeats.jsonl"
    assert main(["sweep", "--widths", "1.0", "--resolutions", "96", "--repeats", "4", "2", "4", "--repeats", "6", "1",
                 "--workers", "1", "--out", str(out)]) == 0
    rows = rows_by_name(out)
    assert sorted(rows) == ["1.0/96 t=6 n4=2 n6=1", "1.0/96 t=6 n4=4 n6=1"]
    assert [stage["n"] for stage in json.loads(rows["1.0/96 t=6 n4=2 n6=1"]["spec"])["stages"]] == [1, 2, 3, 2, 3, 1, 1]
