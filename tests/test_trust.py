"""The trust model, its data generator and one short training run."""

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.data.trust import INDICATORS, generate_profiles, trust_splits
from seqjax.models import build_model, count_params
from seqjax.train.loop import fit


def test_parameter_count_is_the_seeds():
    model = build_model("trust")
    v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 2, 768)), jnp.array([2]))
    assert count_params(v) == 1_297_985


def test_output_is_one_logit_per_profile():
    model = build_model("trust", hidden_sizes=(8, 4, 2))
    x = jnp.zeros((3, 2, 768))
    v = jax.jit(model.init)(jax.random.key(0), x, jnp.full((3,), 2))
    assert model.apply(v, x, jnp.full((3,), 2)).shape == (3,)


def test_generator_is_deterministic_with_the_seed_class_balance_and_ranges():
    p = generate_profiles(6000, seed=0)
    q = generate_profiles(6000, seed=0)
    np.testing.assert_array_equal(p.embeddings, q.embeddings)
    assert p.labels.sum() == 3072  # 51.2% of 6,000
    ranges = {
        "num_projects": (1, 50),
        "total_years": (0.5, 15),
        "avg_project_duration": (0.3, 24),
        "overlap_count": (0, 19),
        "tech_consistency": (0.1, 1),
        "project_link_ratio": (0.001, 1),
    }
    for j, name in enumerate(INDICATORS):
        lo, hi = ranges[name]
        assert lo <= p.indicators[:, j].min() and p.indicators[:, j].max() <= hi, name
    np.testing.assert_allclose(np.linalg.norm(p.embeddings, axis=1), 1.0, atol=1e-5)


def test_splits_are_70_15_15_and_scaled_on_train_only():
    s = trust_splits(1000, seed=0)
    assert [len(s[k]) for k in ("train", "val", "test")] == [700, 150, 150]
    assert s["train"].inputs.shape[1:] == (2, 768)
    np.testing.assert_allclose(s["train"].inputs[:, 1, :6].mean(axis=0), 0.0, atol=1e-5)
    assert np.abs(s["test"].inputs[:, 1, :6].mean(axis=0)).max() > 1e-4
    assert np.all(s["train"].inputs[:, 1, 6:] == 0.0)


def test_both_text_and_indicators_carry_signal():
    s = trust_splits(3000, seed=0)
    y = s["train"].targets
    emb_score = (
        s["train"].inputs[:, 0]
        @ np.linalg.lstsq(s["train"].inputs[:, 0], y - y.mean(), rcond=None)[0]
    )
    ind_corr = [abs(np.corrcoef(s["train"].inputs[:, 1, j], y)[0, 1]) for j in range(6)]
    assert np.corrcoef(emb_score, y)[0, 1] > 0.3
    assert max(ind_corr) > 0.2


def test_a_short_training_run_learns():
    cfg = load_config(
        "configs/trust.yaml",
        ["data.size=1200", "train.epochs=4", "model.hidden_sizes=[32, 16, 8]"],
    )
    splits = load_splits(cfg.data)
    result = fit(cfg, splits, log=lambda _: None)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0]
    assert result.history[-1]["val_accuracy"] > 0.7
