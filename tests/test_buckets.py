"""Length buckets (`train.bucket_width`, seqjax/data/buckets.py): batches of similar
lengths, each cut to its own bucket, take every example once, and a split scored through
them gets the predictions and metrics of unbucketed batches, in the data's order."""

import dataclasses

import jax
import numpy as np
import pytest

from seqjax.config import ExperimentConfig, OptimizerConfig, TrainConfig
from seqjax.data.buckets import length_sorted_order, padded_length
from seqjax.data.dataset import SequenceDataset, iterate_batches
from seqjax.models import build_model
from seqjax.models.registry import model_config
from seqjax.tasks import get_task
from seqjax.train.loop import fit, predict_split
from seqjax.train.optim import make_optimizer
from seqjax.train.sharding import make_mesh
from seqjax.train.state import create_state
from seqjax.train.step import make_eval_step

TINY = dict(features=3, hidden_size=32, num_layers=1, classifier_dims=(4,))


def _data(n: int, steps: int, low: int, seed: int = 0) -> SequenceDataset:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(low, steps + 1, n).astype(np.int32)
    inputs = rng.standard_normal((n, steps, 3)).astype(np.float32)  # (N, T, F)
    inputs[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
    targets = (rng.random(n) < 0.5).astype(np.float32)
    return SequenceDataset(inputs, lengths, targets)


def test_a_batch_pads_to_the_next_multiple_of_the_width_within_the_data():
    assert [padded_length(n, 50, 480) for n in (1, 50, 51, 450, 451, 480)] == [
        50, 50, 100, 450, 480, 480,
    ]  # fmt: skip


def _mean_padded_steps(lengths, batch=32, width=50, steps=500):
    starts = range(0, len(lengths), batch)
    return np.mean([padded_length(lengths[b : b + batch].max(), width, steps) for b in starts])


def test_sorted_batches_are_close_in_length_and_change_with_the_epoch():
    lengths = np.random.default_rng(0).integers(100, 501, 1000)  # steel's range, 31 batches
    order = length_sorted_order(lengths, 32, np.random.default_rng([0, 0]))
    assert sorted(order) == list(range(1000))
    sorted_steps = _mean_padded_steps(lengths[order])
    random_steps = _mean_padded_steps(np.random.default_rng(1).permutation(lengths))
    assert random_steps > 480 and sorted_steps < 380, (random_steps, sorted_steps)
    again = length_sorted_order(lengths, 32, np.random.default_rng([0, 0]))
    np.testing.assert_array_equal(order, again)
    other = length_sorted_order(lengths, 32, np.random.default_rng([0, 1]))
    assert not np.array_equal(order, other)


@pytest.mark.parametrize("shuffle", [True, False])
def test_bucketed_batches_take_every_example_once_cut_to_their_bucket(shuffle):
    data = _data(70, 40, 3)
    data = dataclasses.replace(data, targets=np.arange(70, dtype=np.float32))  # example ids
    seen = []
    for batch in iterate_batches(data, 16, shuffle=shuffle, seed=3, epoch=1, bucket_width=8):
        ids = batch.targets.astype(int)
        steps = batch.inputs.shape[1]
        assert steps == padded_length(int(batch.lengths.max()), 8, 40)
        np.testing.assert_array_equal(batch.inputs, data.inputs[ids, :steps])
        np.testing.assert_array_equal(batch.lengths, data.lengths[ids])
        seen.extend(ids[batch.weights > 0])
    assert sorted(seen) == list(range(70))  # 4 full batches and 6 examples, padded to 16


def test_a_split_scored_in_buckets_equals_it_scored_whole():
    data = _data(45, 40, 1, seed=1)  # 45 examples: a short last batch
    model = build_model("steel", **TINY)
    optimizer = make_optimizer(OptimizerConfig())
    state = create_state(model, optimizer, data.inputs[:1], data.lengths[:1], seed=0)
    task, mesh = get_task("binary_cross_entropy"), make_mesh()
    eval_step = jax.jit(make_eval_step(task.loss))
    whole, whole_loss = predict_split(eval_step, state, data, task, 16, mesh)
    bucketed, loss = predict_split(eval_step, state, data, task, 16, mesh, bucket_width=8)
    np.testing.assert_allclose(bucketed, whole, rtol=1e-5, atol=1e-6)  # in the data's order
    np.testing.assert_allclose(loss, whole_loss, rtol=1e-5)


def test_fit_trains_in_buckets():
    splits = {name: _data(40, 24, 2, seed=s) for s, name in enumerate(("train", "val", "test"))}
    cfg = ExperimentConfig(
        model_name="steel",
        model=model_config("steel", TINY),
        train=TrainConfig(epochs=2, batch_size=8, bucket_width=8, plots=False),
    )
    result = fit(cfg, splits, log=lambda _: None)
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert all(np.isfinite(row["val_loss"]) for row in result.history)


def test_a_negative_width_is_named():
    with pytest.raises(ValueError, match="train.bucket_width must be >= 0"):
        TrainConfig(bucket_width=-1)
    with pytest.raises(ValueError, match="bucket_width must be >= 0"):
        next(iterate_batches(_data(4, 5, 1), 2, shuffle=False, bucket_width=-2))


def test_the_run_log_names_the_buckets_only_when_they_are_on():
    from seqjax.train.run import _buckets_note

    assert _buckets_note(0, _data(4, 500, 1)) == ""
    assert "50-step buckets (up to 10 shapes" in _buckets_note(50, _data(4, 500, 1))
