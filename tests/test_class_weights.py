"""`train.class_weights`: a classifier's loss weighing each example by its class (a list,
or "balanced" from the training split), from the YAML key through the compiled steps to
the run's saved config; the mean stays over examples, so micro-batches add up."""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from seqjax.class_weights import balanced_weights, check_class_weights
from seqjax.config import load_config
from seqjax.data.batch import make_batch
from seqjax.data.dataset import SequenceDataset
from seqjax.losses import binary_cross_entropy, cross_entropy
from seqjax.models import build_model
from seqjax.tasks import TASKS, get_task
from seqjax.train.loop import steps_for, task_for, with_class_weights
from seqjax.train.sharding import make_mesh, replicate, shard_batch
from seqjax.train.state import create_state

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
LABELS = np.array([0, 2, 1, 0, 0, 2, 1, 0], np.int32)
WEIGHTS = np.array([1, 1, 1, 1, 1, 1, 0, 0], np.float32)  # the last two: batch padding
REAL = WEIGHTS > 0
CLASS_WEIGHTS = (0.5, 3.0, 1.75)


def _batch(targets, inputs=None):
    inputs = np.zeros((8, 2, 3), np.float32) if inputs is None else inputs
    return make_batch(inputs, np.full(8, inputs.shape[1]), targets, WEIGHTS)


def _torch_weighted(logits, labels, class_weights):
    """PyTorch's `CrossEntropyLoss(weight, reduction="none").mean()` over the real examples."""
    criterion = torch.nn.CrossEntropyLoss(weight=torch.tensor(class_weights), reduction="none")
    return float(criterion(torch.tensor(logits[REAL]), torch.tensor(labels[REAL]).long()).mean())


def test_cross_entropy_weighs_each_example_by_its_class_as_pytorch_and_keeps_the_mean():
    """Each term times its class's weight, the mean over the real examples; PyTorch's
    default reduction (divided by the weights' sum) is the same loss rescaled."""
    logits = RNG.normal(size=(8, 3)).astype(np.float32) * 2
    ours = float(cross_entropy(logits, _batch(LABELS), CLASS_WEIGHTS))
    np.testing.assert_allclose(ours, _torch_weighted(logits, LABELS, CLASS_WEIGHTS), rtol=1e-6)
    torch_default = torch.nn.CrossEntropyLoss(weight=torch.tensor(CLASS_WEIGHTS))
    default = float(torch_default(torch.tensor(logits[REAL]), torch.tensor(LABELS[REAL]).long()))
    w_y = np.asarray(CLASS_WEIGHTS)[LABELS[REAL]]
    np.testing.assert_allclose(ours * REAL.sum() / w_y.sum(), default, rtol=1e-6)
    plain = float(cross_entropy(logits, _batch(LABELS)))
    assert float(cross_entropy(logits, _batch(LABELS), (1.0, 1.0, 1.0))) == pytest.approx(plain)
    assert ours != pytest.approx(plain)


def test_binary_class_weights_weigh_both_classes_and_pos_weight_is_one_and_w():
    logits = RNG.normal(size=8).astype(np.float32) * 3
    targets = (LABELS > 0).astype(np.float32)
    ours = float(binary_cross_entropy(logits, _batch(targets), class_weights=(0.4, 2.5)))
    per_example_weight = torch.tensor(np.where(targets[REAL] > 0, 2.5, 0.4))
    criterion = torch.nn.BCEWithLogitsLoss(weight=per_example_weight)
    expected = float(criterion(torch.tensor(logits[REAL]), torch.tensor(targets[REAL])))
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    np.testing.assert_allclose(
        binary_cross_entropy(logits, _batch(targets), pos_weight=3.0),
        binary_cross_entropy(logits, _batch(targets), class_weights=(1.0, 3.0)),
        rtol=1e-7,
    )
    with pytest.raises(ValueError, match="give pos_weight or class_weights, not both"):
        binary_cross_entropy(logits, _batch(targets), 2.0, (1.0, 2.0))


def test_balanced_weights_give_each_class_one_share_and_average_one():
    labels = np.array([0] * 6 + [1] * 3 + [2])
    weights = balanced_weights("cross_entropy", labels, 3)
    np.testing.assert_allclose(weights, [10 / 18, 10 / 9, 10 / 3])
    per_class = np.bincount(labels) * np.asarray(weights)
    np.testing.assert_allclose(per_class, per_class[0])  # every class the same total weight
    np.testing.assert_allclose(np.asarray(weights)[labels].mean(), 1.0)  # the loss's scale
    binary = balanced_weights("binary_cross_entropy", np.array([0.0, 0, 0, 1]), 2)
    np.testing.assert_allclose(binary, [4 / 6, 2.0])
    with pytest.raises(
        ValueError,
        match=r"training split, which has no example of class 1 \(its examples by class: "
        r"\{0: 2, 1: 0, 2: 1\}\); give the weights as a list",
    ):
        balanced_weights("cross_entropy", np.array([0, 2, 0]), 3)


def _three_classes(n=60, t=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    inputs = rng.normal(size=(n, t, 5)).astype(np.float32)
    inputs[:, :, 0] += labels[:, None]
    return SequenceDataset(inputs, np.full(n, t), labels.astype(np.int64))


def test_balanced_is_resolved_from_the_training_split_and_the_steps_use_it(tmp_path):
    """From the YAML key: "balanced" becomes the training split's numbers (saved so, in
    config.yaml, by `run_experiment`), the eval step's loss is PyTorch's weighted loss of
    the model's own logits, and two micro-batches make the one batch's update."""
    cfg = load_config(
        "configs/steel_lightweight.yaml",
        ["train.loss=cross_entropy", "train.class_weights=balanced", "train.monitor=val_loss"],
    )
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(
            cfg.model, num_classes=3, hidden_size=32, dropout=0.0, classifier_dropout=0.0
        ),
    )
    train = _three_classes()
    resolved = with_class_weights(cfg, train)
    counts = np.bincount(train.targets, minlength=3)
    np.testing.assert_allclose(resolved.train.class_weights, len(train) / (3 * counts))
    assert task_for(resolved) is get_task("cross_entropy", 1.0, resolved.train.class_weights)
    with pytest.raises(ValueError, match=r"'balanced' is computed from the training split"):
        task_for(cfg)

    mesh = make_mesh(jax.devices()[:1])
    model = build_model("steel", resolved.model)
    inputs = train.inputs[:8]
    batch = shard_batch(_batch(train.targets[:8].astype(np.int32), inputs), mesh)

    def state():  # plain SGD: the update is the gradient, where Adam's first is its sign
        made = create_state(model, optax.sgd(1.0), inputs[:1], np.array([6]), seed=0)
        return replicate(made, mesh)

    logits = np.asarray(model.apply({"params": state().params}, inputs, np.full(8, 6)))
    train_1, eval_step = steps_for(resolved, mesh)
    np.testing.assert_allclose(
        eval_step(state(), batch)["loss"],
        _torch_weighted(logits, train.targets[:8], resolved.train.class_weights),
        rtol=1e-5,
    )
    two = dataclasses.replace(resolved, train=dataclasses.replace(resolved.train, micro_batches=2))
    train_2, _ = steps_for(two, mesh)
    (one_step, m1), (two_steps, m2) = train_1(state(), batch), train_2(state(), batch)
    np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
        one_step.params,
        two_steps.params,
    )


def test_a_run_saves_the_numbers_balanced_gave_and_names_them_first(tmp_path):
    """So a resume, `evaluate` and `predict` read what the run trained with; a resume
    that asks for "balanced" again on the same data is the same config."""
    from seqjax.train.restore import load_run_config
    from seqjax.train.run import check_resumable, run_experiment

    data = _three_classes(n=80)
    np.savez(tmp_path / "three.npz", inputs=data.inputs, lengths=data.lengths, targets=data.targets)
    sets = [
        f"data.source=npz:{tmp_path / 'three.npz'}",
        "train.class_weights=balanced",
        "train.epochs=1",
        "train.batch_size=8",
        "train.plots=false",
        "model.hidden_size=32",
    ]
    cfg = load_config("configs/steel_lightweight.yaml", sets)
    lines = []
    run_experiment(cfg, str(tmp_path / "run"), log=lines.append)
    saved = load_run_config(str(tmp_path / "run"))
    weights = saved.train.class_weights
    assert isinstance(weights, tuple) and len(weights) == 3 and weights != (1.0, 1.0, 1.0)
    assert "; class weights " + ", ".join(f"{w:.4g}" for w in weights) in lines[0]
    from seqjax.data.sources import adapt_to_data, load_splits

    splits = load_splits(cfg.data)
    again = with_class_weights(adapt_to_data(cfg, splits), splits["train"])
    check_resumable(saved, again, "config.yaml")  # raises where they differ


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["train.class_weights=[1, 0]"], r"needs one weight > 0 per class \(2 or more\)"),
        (["train.class_weights=[3]"], r"needs one weight > 0 per class \(2 or more\); got \[3.0\]"),
        (["train.class_weights=[1, .nan]"], r"train.class_weights: expected a finite number"),
        (["train.class_weights=even"], r"a list of weights, one per class, or 'balanced'"),
        (["train.class_weights=3"], r"train.class_weights: expected a list, got 3"),
        (
            ["train.loss=mse", "train.class_weights=[1, 2]"],
            r"weighs the classes of a classifier's loss \(binary_cross_entropy, "
            r"cross_entropy\); train.loss 'mse' has none",
        ),
        (
            ["train.pos_weight=2", "train.class_weights=balanced"],
            r"both weigh the classes; give one \(pos_weight W is class_weights \[1, W\]\)",
        ),
    ],
)
def test_weights_that_cannot_apply_are_named_at_load(overrides, message):
    with pytest.raises((TypeError, ValueError), match=message):
        load_config("configs/steel_lightweight.yaml", overrides)


def test_a_count_of_weights_unlike_the_models_classes_is_named():
    """Known once the data sized the model: a steel config's one logit is two classes,
    data of three switch it to softmax over three."""
    cfg = load_config("configs/steel_lightweight.yaml", ["train.class_weights=[1, 2]"])
    check_class_weights(cfg.train, ())  # binary: two
    three = dataclasses.replace(cfg.train, loss="cross_entropy")
    with pytest.raises(
        ValueError,
        match=r"train.class_weights has 2 weights, but the run's loss cross_entropy tells 3 "
        r"classes apart here; give 3",
    ):
        check_class_weights(three, (3,))
    assert get_task("cross_entropy") is TASKS["cross_entropy"]
    with pytest.raises(ValueError, match=r"loss 'mse' has none"):
        get_task("mse", 1.0, (1.0, 2.0))
