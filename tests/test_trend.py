"""The trend forecaster, its losses and its time-ordered data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.data.batch import make_batch
from seqjax.data.trend import EMBARGO, HORIZONS, WINDOW, generate_series, split_weeks, trend_splits
from seqjax.losses import trend_multitask, trend_volatility_aware
from seqjax.models import build_model, count_params


def test_shapes_ranges_and_attention():
    model = build_model("trend", hidden_size=8, num_heads=2, head_dim=4, features=6)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 5, 6)), jnp.float32)
    lengths = jnp.array([5, 2, 4])
    v = jax.jit(model.init)(jax.random.key(0), x, lengths)
    out = model.apply(v, x, lengths, return_details=True)
    assert out["score"].shape == (3, 2) and out["logits"].shape == (3, 2, 3)
    assert np.all(np.abs(np.asarray(out["score"])) <= 1)
    w = np.asarray(out["attention"])  # (B, heads, T)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    assert np.all(w[1, :, 2:] == 0.0)
    padded = jnp.concatenate([x, jnp.full((3, 3, 6), 1e5)], axis=1)
    out_p = model.apply(v, padded, lengths)
    np.testing.assert_allclose(np.asarray(out_p["score"]), np.asarray(out["score"]), atol=1e-5)


def test_parameter_count_is_reported():
    model = build_model("trend")
    v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 12, 62)), jnp.array([12]))
    h = 64
    lstm = 2 * (4 * h * (62 + h) + 8 * h) + 2 * (4 * h * (2 * h + h) + 8 * h)
    attention = 3 * (2 * h * 2 * h + 2 * h) + 2 * h  # key, value, out + queries
    heads = 2 * ((2 * h * 64 + 64) + (64 + 1) + (64 * 3 + 3))
    assert count_params(v) == lstm + attention + heads


def test_splits_are_time_ordered_with_an_embargo():
    ranges = split_weeks(260)
    assert ranges[0][0] == WINDOW
    for earlier, later in zip(ranges, ranges[1:], strict=False):
        # a training label reads weeks up to t + max horizon: all before the next split
        assert earlier[-1] + max(HORIZONS) < later[0]
        assert later[0] - earlier[-1] == EMBARGO + 1
    assert ranges[-1][-1] + max(HORIZONS) <= 259


def test_no_look_ahead_changing_the_future_changes_no_training_input():
    base = trend_splits(6, seed=0)
    feats, volume = generate_series(6, seed=0)
    cutoff = split_weeks(260)[0][-1]  # last week a training input may see
    import seqjax.data.trend as trend_module

    def tampered(n_series, weeks, *, seed):
        f, v = feats.copy(), volume.copy()
        f[:, cutoff + 1 :] += 1000.0  # rewrite everything after the training period
        v[:, cutoff + 1 + EMBARGO :] += 1000.0
        return f, v

    original = trend_module.generate_series
    trend_module.generate_series = tampered
    try:
        changed = trend_splits(6, seed=0)
    finally:
        trend_module.generate_series = original
    np.testing.assert_array_equal(changed["train"].inputs, base["train"].inputs)
    np.testing.assert_array_equal(changed["train"].targets, base["train"].targets)
    assert not np.array_equal(changed["test"].inputs, base["test"].inputs)


@pytest.mark.parametrize("loss_fn", [trend_multitask, trend_volatility_aware])
def test_losses_are_finite_weighted_and_ignore_padding_examples(loss_fn):
    rng = np.random.default_rng(0)
    outputs = {
        "score": jnp.asarray(rng.uniform(-1, 1, (4, 2)), jnp.float32),
        "logits": jnp.asarray(rng.standard_normal((4, 2, 3)), jnp.float32),
    }
    targets = np.stack([rng.uniform(-1, 1, (4, 2)), rng.uniform(0.5, 2, (4, 2))], -1)
    x = np.zeros((4, 1, 1), np.float32)
    full = make_batch(x, np.ones(4, np.int32), targets.astype(np.float32))
    half = make_batch(
        x,
        np.ones(4, np.int32),
        targets.astype(np.float32),
        weights=np.array([1, 1, 0, 0], np.float32),
    )
    junk = targets.copy()
    junk[2:] = 5.0
    half_junk = make_batch(
        x, np.ones(4, np.int32), junk.astype(np.float32), weights=np.array([1, 1, 0, 0], np.float32)
    )
    a, b, c = (float(loss_fn(outputs, bt)) for bt in (full, half, half_junk))
    assert np.isfinite(a) and a > 0
    assert b == pytest.approx(c, rel=1e-6)
