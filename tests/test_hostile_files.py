"""Weights files are only ever read as tensors: a malicious pickle is refused, not run."""

import pickle

import pytest
import torch

from mbv2.errors import WeightsError
from mbv2.weights import load_state_dict, local_source


class _CreatesAFile:
    """Unpickling this calls open(path, "w"): a stand-in for any code an attacker would run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def malicious_checkpoint(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "mobilenet_v2.pth"
    torch.save({"features.0.0.weight": torch.zeros(1), "payload": _CreatesAFile(marker)}, path)
    return path, marker


def test_the_payload_is_real(malicious_checkpoint):
    """Plain unpickling would run it, so the refusal below is meaningful."""
    path, marker = malicious_checkpoint
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_malicious_pickle_is_refused_without_running_it(malicious_checkpoint):
    path, marker = malicious_checkpoint
    with pytest.raises(WeightsError, match="only tensors are accepted, never arbitrary pickled code"):
        load_state_dict(local_source(path))
    assert not marker.exists()


def test_a_raw_pickle_is_refused_too(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "weights.pth"
    path.write_bytes(pickle.dumps(_CreatesAFile(marker)))
    with pytest.raises(WeightsError, match="not a plain PyTorch state_dict"):
        load_state_dict(local_source(path))
    assert not marker.exists()


def test_a_checkpoint_that_is_not_a_state_dict_is_explained(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(WeightsError, match="holds a list, not a state_dict"):
        load_state_dict(local_source(path))
