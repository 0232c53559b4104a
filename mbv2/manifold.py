"""The paper's Figure 1: what a ReLU does to a low-dimensional manifold, by dimension.

A 2-D spiral x is embedded into n dimensions by a random matrix T, passed through a ReLU
and projected back with the pseudo-inverse of T: x' = pinv(T) · ReLU(T · x). With n = 2 or
3 the ReLU zeroes all but one coordinate over whole arcs of the spiral, which collapse onto a
line or a point (information lost for good); with n = 30 at least two coordinates survive
everywhere, so nothing collapses, and the round trip comes close to the spiral. Because the
ReLU also halves the signal on average, x' is compared with x after the single best rescaling.

Every random matrix comes from a generator seeded by (seed, n, draw), so a class sees the
same picture and each n is reproducible on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_SEED = 0
DIMENSIONS = range(2, 31)  # the slider's range; the paper shows 2, 3, 5, 15 and 30


@dataclass(frozen=True)
class Spiral:
    points: int = 400
    turns: float = 2.5
    inner_radius: float = 0.2

    def coordinates(self) -> np.ndarray:
        """(points, 2) positions, winding outwards around the origin."""
        progress = np.linspace(0.0, 1.0, self.points)
        angle = 2 * np.pi * self.turns * progress
        radius = self.inner_radius + progress
        return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


@dataclass(frozen=True)
class Reconstruction:
    dimensions: int
    original: np.ndarray  # (points, 2)
    recovered: np.ndarray  # (points, 2), rescaled to best match `original`
    collapsed: np.ndarray  # (points,) bool: fewer than two coordinates survived the ReLU

    @property
    def error(self) -> float:
        """Distance from the original relative to its size: 0 is perfect, 1 is nothing kept."""
        return float(np.linalg.norm(self.recovered - self.original) / np.linalg.norm(self.original))

    @property
    def collapsed_share(self) -> float:
        return float(self.collapsed.mean())


@dataclass(frozen=True)
class RoundTripLoss:
    """What the round trip loses at one n, averaged over random matrices."""

    error: float
    collapsed_share: float


def random_embedding(dimensions: int, seed: int = DEFAULT_SEED, draw: int = 0) -> np.ndarray:
    """The (dimensions, 2) Gaussian matrix T for this seed, n and draw."""
    return np.random.default_rng([seed, dimensions, draw]).standard_normal((dimensions, 2))


def relu_round_trip(
    dimensions: int, seed: int = DEFAULT_SEED, draw: int = 0, spiral: Spiral = Spiral()
) -> Reconstruction:
    """x' = pinv(T) · ReLU(T · x) for the spiral x, rescaled by least squares."""
    original = spiral.coordinates()
    embedding = random_embedding(dimensions, seed, draw)
    lifted = np.maximum(original @ embedding.T, 0.0)
    recovered = lifted @ np.linalg.pinv(embedding).T
    power = float(np.sum(recovered**2))
    scale = float(np.sum(recovered * original)) / power if power else 0.0
    # A Gaussian T has no two parallel rows, so two surviving coordinates pin a point down.
    collapsed = (lifted > 0).sum(axis=1) < 2
    return Reconstruction(dimensions=dimensions, original=original, recovered=scale * recovered, collapsed=collapsed)


def loss_curve(
    dimensions: range = DIMENSIONS, seed: int = DEFAULT_SEED, draws: int = 100, spiral: Spiral = Spiral()
) -> dict[int, RoundTripLoss]:
    """Mean error and collapsed share per n over `draws` random matrices (one draw is noisy)."""
    curve = {}
    for n in dimensions:
        trips = [relu_round_trip(n, seed, draw, spiral) for draw in range(draws)]
        curve[n] = RoundTripLoss(
            error=float(np.mean([trip.error for trip in trips])),
            collapsed_share=float(np.mean([trip.collapsed_share for trip in trips])),
        )
    return curve
