"""The defect-detection model and its sequence generator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.data.batch import make_batch
from seqjax.data.steel import generate, statistics, steel_splits
from seqjax.models import build_model, count_params
from seqjax.tasks import get_task
from seqjax.train.optim import make_optimizer
from seqjax.train.state import create_state
from seqjax.train.step import make_train_step

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 9, 5)).astype(np.float32)
LENGTHS = np.array([9, 4, 6], np.int32)


def _model(**kw):
    cfg = dict(hidden_size=32, num_layers=2, classifier_dims=(8,))
    cfg.update(kw)
    model = build_model("steel", **cfg)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.asarray(X), jnp.asarray(LENGTHS))
    return model, variables


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_the_logits(pooling, bidirectional):
    model, v = _model(
        pooling=pooling, bidirectional=bidirectional, normalization="layer", input_norm=True
    )
    out = model.apply(v, jnp.asarray(X), jnp.asarray(LENGTHS))
    assert out.shape == (3,)
    padded = np.concatenate([X, np.full((3, 7, 5), 1e6, np.float32)], axis=1)
    for b, n in enumerate(LENGTHS):
        padded[b, n:] = 1e6
    out_p = model.apply(v, jnp.asarray(padded), jnp.asarray(LENGTHS))
    np.testing.assert_allclose(np.asarray(out_p), np.asarray(out), rtol=1e-5, atol=1e-5)


def test_attention_weights_sum_to_one_over_valid_steps_only():
    model, v = _model(pooling="attention")
    _, details = model.apply(v, jnp.asarray(X), jnp.asarray(LENGTHS), return_details=True)
    w = np.asarray(details["attention"])
    assert w.shape == (3, 9)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(w[np.arange(9)[None, :] >= LENGTHS[:, None]] == 0.0)
    assert [o.shape for o in details["layer_outputs"]] == [(3, 9, 32), (3, 9, 32)]


def test_residual_layers_add_their_input():
    """With a layer's LSTM weights zeroed its cell stays 0, so its output is its input."""
    model, v = _model(num_layers=3, residual=True, pooling="mean")
    params = dict(v["params"])
    params["lstm_1"] = jax.tree.map(jnp.zeros_like, params["lstm_1"])
    _, details = model.apply(
        {"params": params}, jnp.asarray(X), jnp.asarray(LENGTHS), return_details=True
    )
    first, second, third = (np.asarray(o) for o in details["layer_outputs"])
    np.testing.assert_array_equal(second, first)
    assert not np.allclose(third, second)
    assert np.all(third[np.arange(9)[None, :] >= LENGTHS[:, None]] == 0.0)


def test_parameter_count_of_the_standard_variant():
    cfg = load_config("configs/steel_standard.yaml")
    model = build_model("steel", cfg.model)
    v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 500, 5)), jnp.array([500]))
    h = 64  # lstm_0: 4H(5 + H) + 8H; lstm_1: 4H(H + H) + 8H; attention; norm; classifier
    lstm = 4 * h * (5 + h) + 8 * h + 4 * h * (2 * h) + 8 * h
    attention = h * h + h + h + 1
    head = 2 * h + (h * 64 + 64) + (64 * 32 + 32) + (32 + 1)
    assert count_params(v) == lstm + attention + head


def test_frozen_first_layer_does_not_move_and_batch_stats_update():
    model = build_model(
        "steel", hidden_size=32, num_layers=2, classifier_dims=(8,), normalization="batch"
    )
    opt = load_config("configs/steel_standard.yaml", ['optimizer.freeze=["lstm_0/"]']).optimizer
    state = create_state(model, make_optimizer(opt), X, LENGTHS, seed=0)
    assert "batch_stats" in state.mutable
    step = jax.jit(make_train_step(get_task("binary_cross_entropy").loss))
    before = jax.device_get(state)
    batch = make_batch(X, LENGTHS, np.array([1.0, 0.0, 1.0], np.float32))
    losses = []
    for _ in range(5):
        state, m = step(state, batch)
        losses.append(float(m["loss"]))
    after = jax.device_get(state)
    for a, b in zip(
        jax.tree.leaves(before.params["lstm_0"]),
        jax.tree.leaves(after.params["lstm_0"]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        before.params["lstm_1"]["l0"]["kernel_hh"], after.params["lstm_1"]["l0"]["kernel_hh"]
    )
    assert not np.array_equal(
        before.mutable["batch_stats"]["norm"]["mean"], after.mutable["batch_stats"]["norm"]["mean"]
    )
    assert losses[-1] < losses[0]


def test_generator_statistics():
    data = generate(400, seed=1)
    stats = statistics(data)
    assert stats["length_min"] >= 100 and stats["length_max"] <= 500
    assert sum(stats["length_histogram"].values()) == 400
    assert 0.10 < stats["defect_rate"] < 0.20
    past = np.arange(500)[None, :] >= data.lengths[:, None]
    assert np.all(data.inputs[past] == 0.0)
    np.testing.assert_array_equal(generate(50, seed=3).inputs, generate(50, seed=3).inputs)


def test_splits_scale_on_valid_training_steps_only():
    s = steel_splits(300, seed=0)
    tr = s["train"]
    valid = np.arange(500)[None, :] < tr.lengths[:, None]
    np.testing.assert_allclose(tr.inputs[valid].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(tr.inputs[valid].std(axis=0), 1.0, atol=1e-3)
    assert np.all(tr.inputs[~valid] == 0.0)


def test_summary_statistics_alone_do_not_reveal_a_defect():
    """The signature lives in time: per-channel mean, energy, max and min stay near chance
    (the docstring of seqjax/data/steel.py quotes this figure at size 3000)."""
    sk_lin = pytest.importorskip("sklearn.linear_model")
    from seqjax.metrics import roc_auc

    s = steel_splits(3000, seed=0)

    def feats(ds):
        valid = (np.arange(500)[None, :] < ds.lengths[:, None])[..., None]
        n = ds.lengths[:, None]
        return np.concatenate(
            [
                ds.inputs.sum(1) / n,
                (ds.inputs**2).sum(1) / n,
                np.where(valid, ds.inputs, -1e9).max(1),
                np.where(valid, ds.inputs, 1e9).min(1),
                n / 500,
            ],
            axis=1,
        )

    clf = sk_lin.LogisticRegression(max_iter=5000).fit(feats(s["train"]), s["train"].targets)
    auc = roc_auc(clf.predict_proba(feats(s["test"]))[:, 1], s["test"].targets)
    assert auc < 0.65
