"""The paper's Figure 1: a ReLU loses a 2-D spiral in few dimensions and keeps it in many."""

from __future__ import annotations

import numpy as np
import pytest

from mbv2.manifold import DIMENSIONS, Spiral, loss_curve, random_embedding, relu_round_trip


@pytest.fixture(scope="module")
def curve():
    return loss_curve()


def test_the_slider_covers_two_to_thirty(curve):
    assert list(curve) == list(DIMENSIONS) == list(range(2, 31))


def test_reconstruction_error_falls_as_n_grows(curve):
    assert curve[2].error > 0.7 and curve[3].error > 0.6
    assert curve[30].error < 0.35
    assert curve[2].error > curve[5].error > curve[10].error > curve[20].error > curve[30].error


def test_points_collapse_only_in_few_dimensions(curve):
    assert curve[2].collapsed_share > 0.5
    assert curve[3].collapsed_share > 0.3
    assert all(curve[n].collapsed_share < 0.01 for n in range(15, 31))


def test_a_class_sees_the_same_picture():
    first, again = relu_round_trip(5), relu_round_trip(5)
    assert np.array_equal(first.recovered, again.recovered)
    assert not np.array_equal(first.recovered, relu_round_trip(5, seed=1).recovered)
    # Each n has its own matrix, not a slice of a bigger one.
    assert not np.array_equal(random_embedding(5)[:3], random_embedding(3))


def test_without_collapse_the_round_trip_keeps_the_spiral_shape():
    spiral = Spiral()
    trip = relu_round_trip(30, spiral=spiral)
    assert trip.original.shape == trip.recovered.shape == (spiral.points, 2)
    assert not trip.collapsed.any()
    # Far from exact (the pseudo-inverse does not undo the ReLU) but clearly the same curve.
    correlation = np.corrcoef(trip.original.ravel(), trip.recovered.ravel())[0, 1]
    assert correlation > 0.8


def test_collapsed_points_are_the_ones_with_fewer_than_two_positive_coordinates():
    trip = relu_round_trip(2)
    lifted = trip.original @ random_embedding(2).T
    assert np.array_equal(trip.collapsed, (lifted > 0).sum(axis=1) < 2)
    assert trip.collapsed_share == pytest.approx(trip.collapsed.mean())
