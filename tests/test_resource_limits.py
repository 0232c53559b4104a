"""A valid architecture or batch cannot take the server's memory or CPU: refused on paper, or queued.

The limits must let through the paper's design, all 30 TF-slim presets and the largest sensible
ones, refuse the adversarial designs the issue found, and estimate no less than what is measured.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import torch
from torch import nn

from mbv2 import cost
from mbv2.budget import MemoryBudget
from mbv2.cli import main
from mbv2.compare import tf_slim_presets
from mbv2.errors import ResourceError, SettingsError, SpecError
from mbv2.latency import LatencySettings, measure_model, measure_spec
from mbv2.spec import ArchSpec, Stage

# t = 6, c = 40 at stride 1 on the 512×512 map after the stem of a 1024 input: 2.6 GiB per block in fvcore's trace.
WIDE_ROWS = (Stage(1, 16, 1, 1), Stage(6, 40, 3, 1), Stage(6, 320, 1, 2))


@pytest.mark.parametrize(
    "spec",
    [config.spec for config in tf_slim_presets()]
    + [ArchSpec(width_mult=1.4, resolution=512), ArchSpec(resolution=1024), ArchSpec(width_mult=4.0)],
)
def test_the_papers_designs_and_large_sensible_ones_pass(spec):
    assert cost.madds(spec) < cost.MAX_MADDS / 2 and cost.traced_bytes(spec) < cost.MAX_WORKING_BYTES


def test_the_multiply_add_estimate_is_the_papers_count():
    assert cost.madds(ArchSpec()) == 300_774_272  # what fvcore counts, in the paper's convention


def test_a_design_that_would_exhaust_memory_is_refused_before_anything_is_built():
    with pytest.raises(SpecError) as caught:
        ArchSpec(stages=WIDE_ROWS, resolution=1024)
    message = str(caught.value)
    assert "of feature maps; the limit is 4.0 GiB. Lower the resolution, n or t" in message
    assert "billion multiply-adds; the limit is 25 billion" in message
    assert ArchSpec(stages=WIDE_ROWS, resolution=224)  # the same rows at the paper's resolution are fine


MEASURE = """
import sys
from mbv2.analysis import analyse
from mbv2.spec import ArchSpec, Stage
def peak():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
spec = ArchSpec(stages=(Stage(1, 16, 1, 1), Stage(6, 40, 1, 1), Stage(6, 320, 1, 2)), resolution=256)
before = peak()
analyse(spec)
print(peak() - before)
"""


def test_the_memory_estimate_is_not_below_what_the_analysis_uses():
    """Measured in a fresh process: the peak resident growth of one analysis against the estimate."""
    growth = int(subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, check=True).stdout)
    estimate = cost.traced_bytes(ArchSpec(stages=(Stage(1, 16, 1, 1), Stage(6, 40, 1, 1), Stage(6, 320, 1, 2)),
                                          resolution=256))
    assert growth <= estimate, f"measured {growth / 2**20:.0f} MiB, estimated {estimate / 2**20:.0f} MiB"


def test_a_batch_too_large_for_memory_is_refused_before_the_model_is_built(monkeypatch):
    import mbv2.latency

    monkeypatch.setattr(mbv2.latency, "build_model", lambda spec: pytest.fail("built a model for a refused batch"))
    with pytest.raises(ResourceError, match=r"A batch of 8 images of this design would need about .* GiB of feature "
                                            r"maps; the limit is 4.0 GiB. Use a batch of at most [1-7],"):
        measure_spec(ArchSpec(resolution=1024), LatencySettings(runs=1, warmup=0, batch_size=8))
    monkeypatch.undo()
    result = measure_spec(ArchSpec(width_mult=0.35, resolution=64), LatencySettings(runs=1, warmup=0, batch_size=8))
    assert len(result.samples_ms) == 1


def test_evaluation_batches_shrink_to_fit_a_large_design():
    from mbv2.evaluate import BATCH_SIZE

    assert cost.largest_batch(ArchSpec()) >= BATCH_SIZE  # the paper's design: full batches
    large = ArchSpec(resolution=1024)
    assert cost.forward_bytes(large, cost.largest_batch(large)) <= cost.MAX_WORKING_BYTES
    assert cost.forward_bytes(large, BATCH_SIZE) > cost.MAX_WORKING_BYTES  # what a full batch would have needed


def test_the_cli_refuses_the_batch_in_one_line(capsys):
    assert main(["summary", "--resolution", "1024", "--latency", "--batch", "16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: A batch of 16 images") and err.count("\n") == 1
    assert main(["summary", "--width", "0.35", "--resolution", "64", "--latency", "--runs", "1", "--batch", "2"]) == 0


def test_concurrent_requests_queue_for_the_budget_instead_of_adding_up():
    budget = MemoryBudget(10)
    events: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with budget.reserve(8):
            events.append("first starts")
            first_holds.set()
            time.sleep(0.2)
            events.append("first ends")

    def second() -> None:
        first_holds.wait()
        with budget.reserve(8):
            events.append("second starts")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert events == ["first starts", "first ends", "second starts"]
    assert budget.free_bytes == 10
    with budget.reserve(2), budget.reserve(8):  # small ones together fit, and run at once
        assert budget.free_bytes == 0
    with pytest.raises(ResourceError, match="this server's budget is"):
        with budget.reserve(11):
            pass
    assert budget.free_bytes == 10


class _RecordsThreads(nn.Module):
    """A stand-in model that notes the thread count it runs under and takes a moment."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(torch.get_num_threads())
        time.sleep(0.01)
        return x


def test_two_measurements_at_once_keep_their_own_thread_counts():
    before = torch.get_num_threads()
    models = {1: _RecordsThreads(), 2: _RecordsThreads()}
    threads = [
        threading.Thread(target=measure_model, args=(model, 8, LatencySettings(runs=10, warmup=0, threads=count)))
        for count, model in models.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert models[1].seen == [1] * 10 and models[2].seen == [2] * 10
    assert torch.get_num_threads() == before


def test_bad_latency_settings_are_a_message():
    with pytest.raises(SettingsError, match="Latency warmup must be a whole number of at least 0, got -1."):
        LatencySettings(warmup=-1)
