"""`train.sampler: balanced`: every class equally common in the training batches, drawn
as a pure function of (seed, epoch) so that a resumed run draws the same batches; refused
where there are no classes or where class weights would rebalance them again."""

import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.data.dataset import SequenceDataset, batch_order, iterate_batches
from seqjax.data.sampler import balanced_draw, sampler_note
from seqjax.train.run import run_experiment

LABELS = np.repeat([0, 1], [900, 100])  # (1000,): one positive in ten


def _data(labels: np.ndarray) -> SequenceDataset:
    n = len(labels)
    lengths = 1 + np.arange(n, dtype=np.int32) % 40  # (N,) in [1, 40]
    inputs = np.zeros((n, 40, 2), np.float32)  # (N, T, F)
    inputs[..., 0] = np.arange(n)[:, None]  # each row names itself
    return SequenceDataset(inputs, lengths, labels.astype(np.float32))


def test_each_class_makes_up_an_equal_share_of_the_draw():
    drawn = balanced_draw(LABELS, np.random.default_rng(0))  # (1000,) indices
    assert drawn.shape == (1000,) and drawn.min() >= 0 and drawn.max() < 1000
    share = LABELS[drawn].mean()  # the positives' share: 0.1 in the data
    assert 0.45 < share < 0.55, share  # 0.5 +- 3 sd of a binomial of 1000 draws
    positives = drawn[LABELS[drawn] == 1]
    assert len(np.unique(positives)) < len(positives)  # 100 positives, ~500 draws: repeats
    three = np.repeat([0, 1, 2], [700, 250, 50])
    counts = np.bincount(three[balanced_draw(three, np.random.default_rng(1))], minlength=3)
    assert all(abs(c - 1000 / 3) < 50 for c in counts), counts


def test_the_draw_is_a_function_of_seed_and_epoch_and_its_batches_resume():
    data = _data(LABELS)
    order = batch_order(data, 32, shuffle=True, seed=3, epoch=2, balance=LABELS)
    again = batch_order(data, 32, shuffle=True, seed=3, epoch=2, balance=LABELS)
    np.testing.assert_array_equal(order, again)
    other = batch_order(data, 32, shuffle=True, seed=3, epoch=3, balance=LABELS)
    assert not np.array_equal(order, other)
    # without `balance` the shuffle is the plain permutation it always was
    plain = batch_order(data, 32, shuffle=True, seed=3, epoch=2)
    np.testing.assert_array_equal(plain, np.random.default_rng([3, 2]).permutation(1000))
    # a run resumed at batch 5 of the epoch takes the same batches from there
    kw = {"shuffle": True, "seed": 3, "epoch": 2, "balance": LABELS}
    whole = [b.inputs[:, 0, 0] for b in iterate_batches(data, 32, **kw)]
    resumed = [b.inputs[:, 0, 0] for b in iterate_batches(data, 32, start=5, **kw)]
    assert len(whole) == 32 and len(resumed) == 27
    for a, b in zip(whole[5:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    rows = np.concatenate(whole)[:1000].astype(int)  # the epoch's examples, in batches
    np.testing.assert_array_equal(rows, order)
    # length buckets reorder the same draw into batches of similar lengths
    bucketed = batch_order(data, 32, shuffle=True, seed=3, epoch=2, balance=LABELS, bucket_width=8)
    np.testing.assert_array_equal(np.sort(bucketed), np.sort(order))
    spread = data.lengths[bucketed[:992]].reshape(31, 32)
    assert (
        np.ptp(spread, axis=1).mean()
        < np.ptp(data.lengths[order[:992]].reshape(31, 32), axis=1).mean()
    )
    # the order of an evaluation pass is not drawn
    np.testing.assert_array_equal(
        batch_order(data, 32, shuffle=False, balance=LABELS), np.arange(1000)
    )


@pytest.mark.parametrize(
    "sets, message",
    [
        (["train.sampler=weighted"], r"train.sampler must be one of \('shuffle', 'balanced'\)"),
        (["train.sampler=balanced", "train.loss=mse"], "train.loss 'mse' has no classes"),
        (
            ["train.sampler=balanced", "train.pos_weight=5"],
            "sampler 'balanced' and train.pos_weight",
        ),
        (
            ["train.sampler=balanced", "train.class_weights=balanced"],
            "both rebalance the classes, and together would tip the balance the other way",
        ),
    ],
)
def test_a_sampler_that_cannot_apply_is_named(sets, message):
    with pytest.raises(ValueError, match=message):
        load_config("configs/steel_lightweight.yaml", sets)


def test_a_balanced_run_says_so_and_trains(tmp_path):
    """The wiring: the run's first line names the sampler and what it draws, and the run
    trains to its test metrics."""
    rng = np.random.default_rng(0)
    n = 120
    labels = (rng.random(n) < 0.15).astype(np.int32)  # (N,) rare positives
    x = rng.standard_normal((n, 6, 2)).astype(np.float32)  # (N, T, F)
    x[:, :, 0] += 2.0 * labels[:, None]  # the positives' first channel is high
    np.savez(tmp_path / "data.npz", inputs=x, targets=labels)
    sets = [f"data.source=npz:{tmp_path / 'data.npz'}", "train.sampler=balanced"]
    sets += [
        "train.epochs=2",
        "train.min_epochs=0",
        "train.plots=false",
        "checkpoint.enabled=false",
    ]
    cfg = load_config("configs/steel_lightweight.yaml", sets)
    said = []
    metrics = run_experiment(cfg, str(tmp_path / "run"), log=said.append)
    assert "batches drawn class-balanced (train.sampler), 2 classes each 1/2 of a batch" in said[0]
    assert len(said) >= 3 and 0.0 <= metrics["test"]["auc_roc"] <= 1.0
    note = sampler_note("balanced", "binary_cross_entropy", LABELS.astype(np.float32))
    # 1000 draws, each positive's chance 1/200 a draw, each negative's 1/1800:
    # 100 (1 - (1 - 1/200)^1000) + 900 (1 - (1 - 1/1800)^1000) = 99.3 + 383.8 seen
    assert note.endswith("~483 distinct of 1000 examples an epoch"), note
    assert sampler_note("shuffle", "binary_cross_entropy", LABELS) == ""
