"""The hybrid conv + BiLSTM + attention model at a tiny width, and feature ablation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.interpret import feature_ablation_importance
from seqjax.models import build_model, count_params

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 10, 9)).astype(np.float32)
LENGTHS = np.array([10, 4, 7], np.int32)
TINY = dict(
    d_model=16,
    num_heads=2,
    head_dims=(8,),
    lstm_blocks=2,
    layers_per_block=1,
    attention_after=(1, 2),
)


def _model(**kw):
    model = build_model("hybrid", **{**TINY, **kw})
    return model, jax.jit(model.init)(jax.random.key(0), X, LENGTHS)


@pytest.mark.parametrize("block_norm", ["post", "pre"])
def test_shapes_details_and_padding_invariance(block_norm):
    model, v = _model(block_norm=block_norm)
    apply = jax.jit(model.apply, static_argnames="return_details")
    out, details = apply(v, X, LENGTHS, return_details=True)
    assert out.shape == (3, 3) and details["heads"].shape == (3, 3, 3)
    assert [w.shape for w in details["attention"]] == [(3, 2, 10, 10)] * 2
    w = np.asarray(details["attention"][0])
    np.testing.assert_allclose(w[1, :, :4].sum(-1), 1.0, atol=1e-6)  # valid queries
    assert np.all(w[1, :, :, 4:] == 0.0) and np.all(w[1, :, 4:] == 0.0)
    padded = np.concatenate([X, np.full((3, 6, 9), 1e4, np.float32)], axis=1)
    for b, n in enumerate(LENGTHS):
        padded[b, n:] = 1e4
    np.testing.assert_allclose(
        np.asarray(apply(v, padded, LENGTHS)), np.asarray(out), rtol=1e-5, atol=1e-5
    )


def test_default_parameter_count():
    model = build_model("hybrid")
    v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 9)), jnp.array([8]))
    lstm = 4 * 2 * (2 * (4 * 128 * (256 + 128) + 8 * 128))  # 4 blocks x 2 layers x 2 dirs
    convs = sum(256 * 256 * k + 256 for k in (3, 5, 7, 3, 5, 9))
    assert count_params(v) == 6_613_005 + 4 * 2 * 256  # + one LayerNorm after each block
    assert (
        count_params({"params": {k: p for k, p in v["params"].items() if k.startswith("bilstm")}})
        == lstm
    )
    assert (
        count_params({"params": {k: p for k, p in v["params"].items() if k.startswith("conv")}})
        == convs
    )


def test_a_few_steps_lower_the_loss():
    import optax

    model, v = _model()
    y = jnp.asarray(RNG.standard_normal((3, 3)), jnp.float32)
    opt = optax.adam(3e-3)
    params, state = v["params"], opt.init(v["params"])

    @jax.jit
    def step(params, state):
        loss, g = jax.value_and_grad(
            lambda p: jnp.mean((model.apply({"params": p}, X, LENGTHS) - y) ** 2)
        )(params)
        updates, state = opt.update(g, state)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(8):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert losses[-1] < losses[0]


def test_feature_ablation_finds_the_feature_the_target_depends_on():
    # A fixed "model": the mean of feature 2 over valid steps; its target is exactly that.
    def predict(x, n):
        valid = np.arange(x.shape[1])[None, :] < np.asarray(n)[:, None]
        return (np.asarray(x)[..., 2] * valid).sum(1) / np.asarray(n)

    target = predict(X, LENGTHS)
    imp = feature_ablation_importance(
        predict, X, LENGTHS, lambda out: float(np.mean((out - target) ** 2))
    )
    assert imp.shape == (9,) and int(np.argmax(imp)) == 2
    assert np.all(np.delete(imp, 2) == 0.0)


def test_synthetic_task_targets_follow_their_definitions():
    from seqjax.data.hybrid import MARKER, generate, hybrid_splits, longest_run

    assert longest_run(np.array([1, 1, 0, 1, 1, 1, 0], bool)) == 3
    assert longest_run(np.zeros(4, bool)) == 0

    x, lengths, y = generate(50, seed=2)
    for b in (3, 7):
        n = lengths[b]
        motifs = y[b, 0] * n / 10
        assert motifs == pytest.approx(round(motifs), abs=1e-4) and 0 <= round(motifs) <= 4
        (marker,) = np.flatnonzero(x[b, :n, 3] == MARKER)
        assert y[b, 1] == x[b, marker, 2] and -3.0 <= y[b, 1] <= 3.0
        above = x[b, :n, 5] > x[b, :n, 6]
        run = int(y[b, 2])
        windows = np.lib.stride_tricks.sliding_window_view(above, run)
        assert windows.all(axis=1).any()  # a run of that length exists ...
        if run < n:  # ... and none longer
            assert not np.lib.stride_tricks.sliding_window_view(above, run + 1).all(axis=1).any()
        assert not x[b, n:].any()
    s = hybrid_splits(200, seed=0)
    np.testing.assert_allclose(s["train"].targets.mean(0), 0.0, atol=1e-5)


def test_baseline_regressor_outputs_and_mse_task():
    from seqjax.data.batch import make_batch
    from seqjax.tasks import get_task

    model = build_model("lstm_baseline", hidden_size=8)
    v = jax.jit(model.init)(jax.random.key(0), X, LENGTHS)
    out = model.apply(v, X, LENGTHS)
    assert out.shape == (3, 3)
    task = get_task("mse")
    batch = make_batch(X, LENGTHS, np.zeros((3, 3), np.float32))
    assert float(task.loss(out, batch)) == pytest.approx(
        float(np.mean(np.asarray(out) ** 2)), rel=1e-6
    )
    m = task.evaluate(np.asarray(out), np.zeros((3, 3)))
    assert set(m) >= {"y0_rmse", "y2_mae", "mse"}
