"""Potential-based shaping keeps the optimal policy: its discounted sum telescopes to a term
that depends only on the first (and last) state; a stored episode's rows are its transitions."""

from __future__ import annotations

import numpy as np

from reward_models.shaping import RewardShaper, episode_rewards, unshaped


def _discounted(rewards: np.ndarray, gamma: float) -> float:
    return float(np.sum(rewards.astype(np.float64) * gamma ** np.arange(len(rewards))))


def test_shaping_term_telescopes_to_start_and_end_potentials():
    rng = np.random.default_rng(0)
    shaper = RewardShaper(gamma=0.95, shaping_scale=1.0, sparse_weight=0.0, success_weight=0.0)
    for _ in range(20):
        phi = rng.uniform(0, 1, rng.integers(2, 60))  # Φ(s_0) .. Φ(s_T)
        shaping = shaper.terms(phi[:-1], phi[1:], np.zeros(len(phi) - 1))["shaping"]
        t = len(phi) - 1
        assert np.isclose(_discounted(shaping, 0.95), 0.95 ** t * phi[-1] - phi[0], atol=1e-9)
        terminated = np.zeros(t, bool)
        terminated[-1] = True  # absorbing end: Φ(s_T) = 0, the sum is -Φ(s_0) whatever happened
        shaping = shaper.terms(phi[:-1], phi[1:], np.zeros(t), terminated)["shaping"]
        assert np.isclose(_discounted(shaping, 0.95), -phi[0], atol=1e-9)


def test_shaping_does_not_reorder_trajectories_from_one_start():
    """Two trajectories from the same start keep their order of (sparse) return under shaping."""
    rng = np.random.default_rng(1)
    shaper = RewardShaper(gamma=0.9, sparse_weight=1.0, sparse_threshold=0.5)
    sparse_only = RewardShaper(gamma=0.9, shaping_scale=0.0, sparse_weight=1.0, sparse_threshold=0.5)
    start = 0.2
    for _ in range(20):
        returns = []
        for _ in range(2):
            phi = np.r_[start, rng.uniform(0, 1, 15)]
            succ = rng.uniform(0, 1, 15)
            term = np.r_[np.zeros(14, bool), True]
            shaped = _discounted(shaper(phi[:-1], phi[1:], succ, term), 0.9)
            base = _discounted(sparse_only(phi[:-1], phi[1:], succ, term), 0.9)
            assert np.isclose(shaped - base, -start, atol=1e-5)
            returns.append((shaped, base))
        assert (returns[0][0] > returns[1][0]) == (returns[0][1] > returns[1][1]) or np.isclose(
            returns[0][1], returns[1][1])


def test_named_terms_add_up_and_sparse_uses_the_threshold():
    shaper = RewardShaper(gamma=1.0, shaping_scale=2.0, success_weight=0.5, sparse_weight=1.0, sparse_threshold=0.7)
    terms = shaper.terms(np.array([0.1, 0.5]), np.array([0.4, 0.5]), np.array([0.6, 0.8]))
    np.testing.assert_allclose(terms["shaping"], [0.6, 0.0])
    np.testing.assert_allclose(terms["sparse"], [0.0, 1.0])
    np.testing.assert_allclose(terms["success"], [0.3, 0.4])
    np.testing.assert_allclose(shaper(np.array([0.1, 0.5]), np.array([0.4, 0.5]), np.array([0.6, 0.8])),
                               [0.9, 1.4], rtol=1e-6)


def test_episode_rows_are_transitions_and_the_last_row_is_none():
    shaper = RewardShaper(gamma=1.0, shaping_scale=2.0, success_weight=0.5, sparse_weight=1.0, sparse_threshold=0.7)
    per_row = episode_rewards(shaper, np.array([0.1, 0.4, 0.5]), np.array([0.0, 0.6, 0.8]))
    np.testing.assert_allclose(per_row, [0.6 + 0.3, 0.2 + 1.0 + 0.4, 0.0], rtol=1e-6)
    assert per_row.dtype == np.float32
    np.testing.assert_array_equal(episode_rewards(unshaped("sparse"), [0.1, 0.9], [0.2, 0.9]), [1.0, 0.0])
    np.testing.assert_allclose(episode_rewards(unshaped("dense"), [0.1, 0.9], [0.2, 0.9]), [0.9, 0.0])
    assert len(episode_rewards(shaper, [0.3], [0.0])) == 1 and len(episode_rewards(shaper, [], [])) == 0
