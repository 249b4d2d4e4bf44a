"""`train.pos_weight`: binary cross-entropy weighing each positive, as PyTorch's
BCEWithLogitsLoss(pos_weight=...), from the config through the compiled steps."""

import dataclasses

import jax
import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.data.batch import make_batch
from seqjax.losses import binary_cross_entropy
from seqjax.models import build_model
from seqjax.tasks import TASKS, get_task
from seqjax.train.loop import steps_for
from seqjax.train.optim import make_optimizer
from seqjax.train.sharding import make_mesh, replicate, shard_batch
from seqjax.train.state import create_state

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=8).astype(np.float32) * 3
TARGETS = np.array([1, 0, 0, 1, 0, 0, 1, 0], np.float32)
WEIGHTS = np.array([1, 1, 1, 1, 1, 1, 0, 0], np.float32)  # the last two: batch padding


def _torch_loss(logits, targets, pos_weight):
    """PyTorch's loss over the real examples only (weight 1)."""
    torch = pytest.importorskip("torch")
    real = WEIGHTS > 0
    criterion = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
    return float(criterion(torch.tensor(logits[real]), torch.tensor(targets[real])))


def _batch(inputs=None):
    inputs = np.zeros((8, 2, 3), np.float32) if inputs is None else inputs
    return make_batch(inputs, np.full(8, 2), TARGETS, WEIGHTS)


@pytest.mark.parametrize("pos_weight", [1.0, 0.25, 3.0, 19.0])
def test_the_loss_is_pytorchs_over_the_real_examples(pos_weight):
    ours = binary_cross_entropy(LOGITS, _batch(), pos_weight)
    np.testing.assert_allclose(ours, _torch_loss(LOGITS, TARGETS, pos_weight), rtol=1e-6)


def test_one_task_object_per_weight_and_the_unweighted_one_unchanged():
    """compile_steps is cached by its task: the same weight must give the same object, or
    every evaluate or predict call would compile its steps again."""
    assert get_task("binary_cross_entropy", 1.0) is TASKS["binary_cross_entropy"]
    assert get_task("binary_cross_entropy", 3.0) is get_task("binary_cross_entropy", 3.0)
    with pytest.raises(ValueError, match="loss 'mse' has none"):
        get_task("mse", 3.0)


def test_the_compiled_steps_of_a_config_use_its_weight():
    """From the YAML key to the jitted train and eval steps: the eval step's loss is
    PyTorch's weighted loss of the model's own logits, and the train step's gradient
    differs from the unweighted one's."""
    cfg = load_config("configs/trust.yaml", ["train.pos_weight=4"])
    mesh = make_mesh(jax.devices()[:1])
    model = build_model("trust", hidden_sizes=(4, 4, 4), features=3)
    inputs = RNG.normal(size=(8, 2, 3)).astype(np.float32)
    batch = shard_batch(_batch(inputs), mesh)

    def state():
        made = create_state(model, make_optimizer(cfg.optimizer), inputs[:1], np.array([2]), seed=0)
        return replicate(made, mesh)

    logits = np.asarray(model.apply({"params": state().params}, inputs, np.full(8, 2)))
    train_w, eval_w = steps_for(cfg, mesh)
    np.testing.assert_allclose(
        eval_w(state(), batch)["loss"], _torch_loss(logits, TARGETS, 4.0), rtol=1e-5
    )
    plain = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, pos_weight=1.0))
    train_1, _ = steps_for(plain, mesh)
    (weighted, _), (unweighted, _) = train_w(state(), batch), train_1(state(), batch)
    delta = jax.tree.map(
        lambda a, b: float(np.abs(a - b).max()), weighted.params, unweighted.params
    )
    assert max(jax.tree.leaves(delta)) > 0


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["train.pos_weight=0"], r"train.pos_weight must be > 0; got 0.0"),
        (["train.pos_weight=-2"], r"train.pos_weight must be > 0; got -2.0"),
        (["train.pos_weight=nan"], r"train.pos_weight: expected a finite number, got nan"),
        (
            ["train.loss=mse", "train.pos_weight=2"],
            r"train.pos_weight weighs the positives of loss binary_cross_entropy; "
            r"train.loss 'mse' has none \(got pos_weight 2.0\)",
        ),
    ],
)
def test_a_weight_that_cannot_apply_is_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config("configs/steel_lightweight.yaml", overrides)


def test_a_binary_runs_first_line_counts_each_splits_positives():
    """What to set pos_weight from, and where a split has none (its AUCs undefined)."""
    from seqjax.data.dataset import SequenceDataset
    from seqjax.train.run import _positives_note

    def split(targets):
        n = len(targets)
        return SequenceDataset(
            np.zeros((n, 2, 3), np.float32), np.full(n, 2), np.array(targets, np.float32)
        )

    splits = {"train": split([1, 0, 0, 1, 0]), "val": split([0, 0]), "test": split([1])}
    assert _positives_note("binary_cross_entropy", splits) == "; positives 2 of 5, 0 of 2, 1 of 1"
    assert _positives_note("mse", splits) == ""


def test_data_of_three_classes_names_the_weight_it_cannot_take():
    """A steel config switches to softmax cross-entropy where the data has 3+ classes; the
    weight set for two is named with the data that made the switch."""
    from seqjax.data.dataset import SequenceDataset
    from seqjax.data.sources import adapt_to_data

    cfg = load_config(
        "configs/steel_lightweight.yaml", ["data.source=npz:x.npz", "train.pos_weight=2"]
    )
    data = SequenceDataset(
        np.zeros((6, 2, 5), np.float32), np.full(6, 2), np.array([0, 1, 2, 0, 1, 2])
    )
    with pytest.raises(
        ValueError,
        match=r"npz:x.npz has 3 classes, so the run trains with softmax cross-entropy; "
        r"train.pos_weight \(2.0\) weighs the positives of two classes only",
    ):
        adapt_to_data(cfg, {"train": data, "val": data})
