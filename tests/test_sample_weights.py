"""`data.sample_weights`: each sequence's weight in the loss, from an array of the user's
npz or a column of their CSV, carried with its sequence into every split and batch; the
loss is the mean weighted by them, through the compiled steps and micro-batches, and a
split's predictions still cover every sequence."""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from seqjax.config import load_config
from seqjax.data.dataset import SequenceDataset, iterate_batches
from seqjax.data.external import csv_splits, npz_splits
from seqjax.data.raw_inputs import read_prediction_inputs
from seqjax.data.spec import DataSpec
from seqjax.data.splits import SplitPlan
from seqjax.models import build_model
from seqjax.train.loop import predict_split, steps_for, task_for
from seqjax.train.sharding import make_mesh, replicate, shard_batch
from seqjax.train.state import create_state

SPLITS = (0.6, 0.2, 0.2)
N, T = 20, 4


def _data(seed=0):
    """Sequence i has the value i in its first channel at every step and weight i / 10
    (sequence 0: weight 0), so a split's weights name the sequences they came with."""
    rng = np.random.default_rng(seed)
    inputs = np.repeat(np.arange(N, dtype=np.float32)[:, None, None], T, axis=1)  # (N, T, 1)
    inputs = np.concatenate([inputs, rng.normal(size=(N, T, 1)).astype(np.float32)], -1)
    return inputs, (np.arange(N) % 2).astype(np.int64), np.arange(N) / 10


def _written(tmp_path, kind):
    inputs, targets, weights = _data()
    if kind == "npz":
        path = tmp_path / "d.npz"
        np.savez(path, inputs=inputs, targets=targets, w=weights)
    else:
        path = tmp_path / "d.csv"
        rows = [
            f"s{i},{targets[i]},{weights[i]},{inputs[i, t, 0]},{inputs[i, t, 1]}"
            for i in range(N)
            for t in range(T)
        ]
        path.write_text("sequence,target,w,id,noise\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_each_split_keeps_its_sequences_weights(tmp_path, kind):
    """The weights go with their sequences through the shuffled split (and a CSV's weight
    column is not a channel); without the option every sequence weighs 1 (None)."""
    path = _written(tmp_path, kind)
    load = npz_splits if kind == "npz" else csv_splits
    splits = load(str(path), SplitPlan(seed=3, fractions=SPLITS), sample_weights="w")
    for part in splits.values():
        assert part.inputs.shape[-1] == 2  # id and noise: the weight is no channel
        ids = np.rint(part.scaler.mean[0] + part.inputs[:, 0, 0] * part.scaler.std[0])
        np.testing.assert_allclose(part.weights, ids / 10, rtol=1e-6)
    plain = load(str(path), SplitPlan(seed=3, fractions=SPLITS))
    assert all(part.weights is None for part in plain.values())


def test_batches_carry_the_weights_and_padding_stays_zero():
    inputs, targets, weights = _data()
    data = SequenceDataset(inputs, np.full(N, T), targets, weights=weights.astype(np.float32))
    batches = list(iterate_batches(data, 8, shuffle=False))
    got = np.concatenate([b.weights for b in batches])
    np.testing.assert_allclose(got[:N], weights, rtol=1e-6)
    assert not got[N:].any() and len(got) == 24  # the short last batch's 4 copies weigh 0


def _steel(num_classes=1):
    cfg = load_config("configs/steel_lightweight.yaml", ["train.batch_size=8"])
    model_cfg = dataclasses.replace(
        cfg.model, features=2, hidden_size=32, dropout=0.0, classifier_dropout=0.0
    )
    return dataclasses.replace(cfg, model=model_cfg)


def test_the_steps_weigh_the_loss_and_micro_batches_add_up():
    """The eval step's loss is sum(w l) / sum(w) of the per-example losses (PyTorch:
    `(loss * w).sum() / w.sum()`); a split's loss is that mean over the whole split, and
    its predictions cover every sequence, those of weight 0 too; two micro-batches make
    the one batch's update."""
    torch = pytest.importorskip("torch")
    cfg = _steel()
    inputs, targets, weights = _data()
    weights = weights.astype(np.float32)
    data = SequenceDataset(inputs, np.full(N, T), targets.astype(np.float32), weights=weights)
    mesh = make_mesh(jax.devices()[:1])
    model = build_model("steel", cfg.model)

    def state():  # plain SGD: the update is the gradient
        made = create_state(model, optax.sgd(1.0), inputs[:1], np.array([T]), seed=0)
        return replicate(made, mesh)

    logits = np.asarray(model.apply({"params": state().params}, inputs, np.full(N, T)))
    per_example = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(logits), torch.tensor(targets, dtype=torch.float32), reduction="none"
    ).numpy()
    train_1, eval_step = steps_for(cfg, mesh)
    batch = next(iterate_batches(data, 8, shuffle=False))
    w8 = weights[:8]
    np.testing.assert_allclose(
        eval_step(state(), shard_batch(batch, mesh))["loss"],
        (per_example[:8] * w8).sum() / w8.sum(),
        rtol=1e-5,
    )
    predictions, loss = predict_split(eval_step, state(), data, task_for(cfg), 8, mesh)
    assert predictions.shape == (N,)  # weight-0 sequence 0 and the fractional ones
    np.testing.assert_allclose(predictions, 1 / (1 + np.exp(-logits)), rtol=1e-5)
    np.testing.assert_allclose(loss, (per_example * weights).sum() / weights.sum(), rtol=1e-5)

    two = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, micro_batches=2))
    train_2, _ = steps_for(two, mesh)
    sharded = shard_batch(batch, mesh)
    (one_step, m1), (two_steps, m2) = train_1(state(), sharded), train_2(state(), sharded)
    np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-5)
    assert float(m1["weight"]) == pytest.approx(w8.sum())
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
        one_step.params,
        two_steps.params,
    )


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_evaluate_input_reads_the_weights_and_predict_ignores_them(tmp_path, kind):
    path = _written(tmp_path, kind)
    spec = DataSpec(steps=T, features=2, target_shape=(), target_dtype="int64", scaler=None)
    if kind == "csv":  # a CSV run matches the channels by name
        splits = csv_splits(str(path), SplitPlan(seed=0, fractions=SPLITS), sample_weights="w")
        spec = DataSpec.of(splits["train"])
    labelled, _ = read_prediction_inputs(str(path), spec, labelled=True, weight_column="w")
    np.testing.assert_allclose(labelled.weights, np.arange(N) / 10, rtol=1e-6)
    new, _ = read_prediction_inputs(str(path), spec, weight_column="w")
    assert new.weights is None and new.inputs.shape == (N, T, 2)


def _npz(tmp_path, **arrays):
    inputs, targets, _ = _data()
    path = tmp_path / "bad.npz"
    np.savez(path, inputs=inputs, targets=targets, **arrays)
    return str(path)


@pytest.mark.parametrize(
    "weights, message",
    [
        (-np.ones(N), r"sample weights must be finite and >= 0; sequence 0 has -1.0"),
        (np.r_[np.nan, np.ones(N - 1)], r"finite and >= 0; sequence 0 has nan"),
        (np.ones((N, 2)), r"must be numbers of shape \(20,\); got float64 \(20, 2\)"),
        (np.zeros(N), r"every sample weight is 0"),
        (np.r_[np.zeros(N - 1), 1.0], r"every sample weight of the (train|val|test) split"),
    ],
)
def test_weights_that_cannot_weigh_are_named_with_the_file(tmp_path, weights, message):
    path = _npz(tmp_path, w=weights)
    with pytest.raises(ValueError, match=message):
        npz_splits(path, SplitPlan(seed=0, fractions=SPLITS), sample_weights="w")


def test_a_missing_or_changing_weight_and_a_source_without_any_are_named(tmp_path):
    path = _npz(tmp_path, importance=np.ones(N))
    with pytest.raises(
        ValueError, match=r"missing arrays \['w'\]; expected inputs, lengths, targets, w"
    ):
        npz_splits(path, SplitPlan(seed=0, fractions=SPLITS), sample_weights="w")
    csv = tmp_path / "c.csv"
    csv.write_text("sequence,target,w,a\ns0,0,1,0.5\ns0,0,2,0.5\ns1,1,1,0.1\ns2,0,1,0.2\n")
    with pytest.raises(ValueError, match=r"c.csv:3: w of sequence 's0' changes over time"):
        csv_splits(str(csv), SplitPlan(seed=0, fractions=SPLITS), sample_weights="w")
    with pytest.raises(ValueError, match=r"data.source 'steel' has none"):
        load_config("configs/steel_lightweight.yaml", ["data.sample_weights=w"])
    with pytest.raises(ValueError, match=r"'target' names the data's own target"):
        sets = ["data.source=csv:c.csv", "data.sample_weights=target"]
        load_config("configs/steel_lightweight.yaml", sets)
