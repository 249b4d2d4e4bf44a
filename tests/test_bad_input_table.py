"""The bad-input cases not covered next to their module, as one table. Every case must
fail with a message naming the problem, before compute and before anything is written.
tests/BAD_INPUT.md lists every case in the suite and where it is tested."""

import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.data.dataset import SequenceDataset, iterate_batches
from seqjax.data.sources import adapt_to_data, load_splits
from seqjax.data.splits import split_indices
from seqjax.train.loop import check_outputs_fit_targets, check_trainable, fit, mesh_for
from seqjax.train.run import prepare_run_dir, run_experiment

X = np.zeros((6, 4, 5), np.float32)
N = np.full(6, 4, np.int32)
Y = np.zeros(6, np.float32)


def _data(**kw):
    return SequenceDataset(**{"inputs": X, "lengths": N, "targets": Y, **kw})


def _nan_inputs():
    x = X.copy()
    x[2, 1, 3] = np.nan
    _data(inputs=x)


def _fit(*overrides):
    cfg = load_config("configs/steel_lightweight.yaml", ["checkpoint.enabled=false", *overrides])
    splits = {"train": _data(), "val": _data(), "test": _data()}
    fit(cfg, splits, log=lambda _: None, show_progress=False)


def _regression_targets_for_a_classifier():
    cfg = load_config("configs/steel_lightweight.yaml", ["data.source=npz:x.npz"])
    splits = {k: _data(targets=np.linspace(0, 1, 6, dtype=np.float32)) for k in ("train", "val")}
    adapt_to_data(cfg, splits)


def _run_dir_under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    prepare_run_dir(str(tmp_path / "file" / "run"))


CASES = [
    ("NaN in inputs", _nan_inputs, ValueError, "inputs contain NaN or Inf"),
    ("Inf in targets", lambda: _data(targets=np.r_[Y[:5], np.inf]), ValueError, "targets contain"),
    (
        "length 0",
        lambda: _data(lengths=np.r_[N[:5], 0]),
        ValueError,
        r"lengths must lie in \[1, 4\]",
    ),
    ("length > T", lambda: _data(lengths=np.r_[N[:5], 5]), ValueError, r"max 5"),
    ("ragged parts", lambda: _data(targets=Y[:5]), ValueError, "must have the same length"),
    (
        "empty dataset",
        lambda: list(iterate_batches(_data().subset(np.arange(0)), 2, shuffle=False)),
        ValueError,
        "the dataset is empty",
    ),
    ("empty split", lambda: split_indices(3, (0.8, 0.1, 0.1)), ValueError, "leaves an empty part"),
    (
        "batch larger than data",
        lambda: _fit("train.batch_size=8"),
        ValueError,
        "larger than the training split",
    ),
    (
        "micro-batches that do not split the batch",
        lambda: _fit("train.batch_size=4", "train.micro_batches=3"),
        ValueError,
        r"train.batch_size 4 does not split into train.micro_batches=3 equal micro-batches",
    ),
    (
        "more devices than exist",
        lambda: _fit("train.batch_size=2", "mesh.num_devices=64"),
        ValueError,
        "only 1 device exists",
    ),
    (
        "labels not classes",
        _regression_targets_for_a_classifier,
        ValueError,
        "targets are not class labels",
    ),
    (
        "mse outputs and targets of other shapes",
        lambda: check_outputs_fit_targets(
            load_config("configs/hybrid.yaml", ["train.loss=mse"]),
            SequenceDataset(np.zeros((4, 6, 9), np.float32), np.full(4, 6), np.zeros(4)),
        ),
        ValueError,
        r"mean_squared_error: outputs \(2, 3\) and targets \(2,\) differ in shape",
    ),
    (
        "unknown data source",
        lambda: load_config("configs/trust.yaml", ["data.source=web:x"]),
        ValueError,
        "unknown data.source 'web:x'",
    ),
]


@pytest.mark.parametrize("name,call,error,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(name, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_an_uncreatable_run_directory_is_named_and_nothing_is_written(tmp_path):
    with pytest.raises(PermissionError, match="cannot create run directory"):
        _run_dir_under_a_file(tmp_path)
    cfg = load_config("configs/steel_lightweight.yaml", ["data.size=30", "train.batch_size=4096"])
    with pytest.raises(ValueError, match="larger than the training split"):
        run_experiment(cfg, str(tmp_path / "run"), log=lambda _: None)
    assert not (tmp_path / "run").exists()


def test_a_monitor_the_epochs_never_log_is_named_before_the_run(tmp_path):
    """Named before the run directory is made, not after an epoch's training."""
    cfg = load_config(
        "configs/steel_lightweight.yaml",
        ["data.size=30", "train.batch_size=4", "train.monitor=val_acc"],
    )
    with pytest.raises(
        ValueError,
        match=r"train.monitor 'val_acc' is not a logged metric \(did you mean 'val_accuracy'\?\); "
        r"available: \['epoch', 'lr', 'train_loss', 'val_accuracy'",
    ):
        run_experiment(cfg, str(tmp_path / "run"), log=lambda _: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "monitor,mode,message",
    [
        ("val_accuracy", "min", "train.mode 'min' would keep the epoch of the lowest val_accuracy"),
        ("val_loss", "max", "train.mode 'max' would keep the epoch of the highest val_loss"),
        ("train_loss", "max", r"set train.mode=min with train.monitor=train_loss"),
        (
            "lr",
            "auto",
            r"train.mode 'auto' cannot tell from its name whether a lower or a higher lr is "
            r"better; set train.mode=min or train.mode=max",
        ),
    ],
)
def test_a_mode_that_cannot_keep_the_best_epoch_is_named_before_the_run(
    tmp_path, monitor, mode, message
):
    """`--set train.monitor=val_accuracy train.mode=min` would stop early on, and keep as
    best, the least accurate epoch; `auto` takes the direction from the monitor's name,
    which the learning rate's gives none."""
    overrides = ["data.size=30", "train.batch_size=4", f"train.monitor={monitor}"]
    cfg = load_config("configs/steel_lightweight.yaml", [*overrides, f"train.mode={mode}"])
    with pytest.raises(ValueError, match=message):
        run_experiment(cfg, str(tmp_path / "run"), log=lambda _: None)
    assert not (tmp_path / "run").exists()


def test_a_monitor_undefined_on_the_validation_split_is_named_before_the_run(tmp_path):
    """Steel's configs monitor val_auc_roc; a validation split of one class (rare defects)
    made it NaN every epoch, and the run kept its first epoch as the best, halved the
    learning rate and stopped early, without a word."""
    n = 40
    val = split_indices(n, (0.7, 0.15, 0.15), seed=0)[1]
    targets = np.zeros(n, np.float32)
    targets[np.setdiff1d(np.arange(n), val)[::2]] = 1.0  # both classes in train and test only
    path = tmp_path / "rare.npz"
    np.savez(path, inputs=np.ones((n, 4, 5), np.float32), lengths=np.full(n, 4), targets=targets)
    overrides = [f"data.source=npz:{path}", "train.batch_size=4"]
    cfg = load_config("configs/steel_lightweight.yaml", overrides)
    with pytest.raises(
        ValueError,
        match=r"train.monitor 'val_auc_roc' is NaN on the validation split \(6 examples\) "
        r"whatever the model predicts: AUC-ROC needs both classes among its targets \(its "
        r"targets by class: \{0: 6\}\); monitor a metric defined there \(val_loss, "
        r"val_accuracy, val_precision, val_recall, val_f1, val_brier, val_ece\)",
    ):
        run_experiment(cfg, str(tmp_path / "run"), log=lambda _: None)
    assert not (tmp_path / "run").exists()
    cfg = load_config("configs/steel_lightweight.yaml", [*overrides, "train.monitor=val_loss"])
    check_trainable(cfg, load_splits(cfg.data), mesh_for(cfg))


def test_a_correlation_over_constant_targets_is_named():
    from seqjax.config import TrainConfig
    from seqjax.train.monitor import check_monitor

    train = TrainConfig(loss="mse", monitor="val_correlation")
    with pytest.raises(ValueError, match="a correlation needs targets that vary; monitor"):
        check_monitor(train, _data(targets=np.full(6, 2.0, np.float32)), ())
    check_monitor(train, _data(targets=np.linspace(0, 1, 6, dtype=np.float32)), ())


def test_auto_mode_accepts_a_monitor_whose_name_gives_its_direction():
    """`--set train.monitor=val_accuracy` alone, on a shipped config (`mode: auto`)."""
    cfg = load_config(
        "configs/steel_lightweight.yaml",
        ["data.size=30", "train.batch_size=4", "train.monitor=val_accuracy"],
    )
    assert cfg.train.mode == "auto"
    check_trainable(cfg, load_splits(cfg.data), mesh_for(cfg))


def test_predict_into_a_missing_directory_is_named(tmp_path, capsys):
    from seqjax.cli import main

    argv = ["predict", str(tmp_path), "--input", "x.npz", "--output", str(tmp_path / "no/p.csv")]
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["trust", "steel", "trend", "hybrid", "lstm_baseline"])
def test_a_model_refuses_a_sequence_with_no_steps(name):
    """The LSTM takes a length of 0 (a stream with nothing new keeps its state); a model
    that scores a sequence needs at least one step, and says so by its name."""
    import jax

    from seqjax.models.registry import build_model

    model = build_model(name)
    x = np.zeros((2, 3, model.config.features), np.float32)  # (B, T, F)
    with pytest.raises(ValueError, match=rf"{type(model).__name__}: lengths must lie in \[1, 3\]"):
        model.init(jax.random.key(0), x, np.array([3, 0], np.int32))


def _layers():
    """Each public masked layer of seqjax.layers as a call (x, lengths) -> anything."""
    import jax

    from seqjax import layers

    def module(m):
        return lambda x, n: m.init_with_output(jax.random.key(0), x, n)

    return {
        "last_valid": layers.last_valid,
        "masked_mean": layers.masked_mean,
        "masked_max": layers.masked_max,
        "AttentionPool": module(layers.AttentionPool(4)),
        "MultiHeadAttentionPool": module(layers.MultiHeadAttentionPool(2)),
        "MaskedSelfAttention": module(layers.MaskedSelfAttention(2)),
        "MultiScaleConv": module(layers.MultiScaleConv(4)),
    }


@pytest.mark.parametrize("name", list(_layers()))
def test_every_masked_layer_names_bad_lengths(name):
    """Before, masked_mean divided by a length past T (a mean 5/6 of the true one), the
    attention layers took float lengths, and a wrong shape was a broadcasting error."""
    call = _layers()[name]
    x = np.ones((2, 5, 4), np.float32)  # (B, T, D)
    with pytest.raises(ValueError, match=rf"{name}: lengths must lie in \[0, 5\].*max 6"):
        call(x, np.array([6, 2], np.int32))
    with pytest.raises(TypeError, match=rf"{name}: lengths must be an integer dtype"):
        call(x, np.array([5.0, 2.0], np.float32))
    with pytest.raises(ValueError, match=rf"{name}: lengths must have shape \(2,\)"):
        call(x, np.array([5, 2, 1], np.int32))
    with pytest.raises(ValueError, match=rf"{name}: lengths are required"):
        call(x, None)  # (the LSTM alone takes none: it then runs every row all T steps)
    call(x, np.array([5, 0], np.int32))  # 0 is a length: the pools give zeros there


@pytest.mark.parametrize(
    "config,setting,message",
    [
        ("hybrid", "model.outputs=2", r"outputs \(2, 2\) .* targets \(2, 3\) \(model.outputs=2"),
        ("steel_lightweight", "model.num_classes=3", r"outputs \(2, 3\) .* targets \(2,\)"),
        ("trend", "model.num_horizons=3", r"'score': \(2, 3\).* targets \(2, 2, 2\)"),
    ],
)
def test_outputs_set_against_the_data_are_named_before_the_run_is_made(
    config, setting, message, tmp_path
):
    """Before, each failed inside the first train step as a bare broadcasting error, after
    the run directory (config.yaml, checkpoints/) was made."""
    size = "data.size=10" if config == "trend" else "data.size=60"
    cfg = load_config(f"configs/{config}.yaml", [setting, size, "train.batch_size=4"])
    with pytest.raises(ValueError, match=message):
        run_experiment(cfg, str(tmp_path / "run"), log=lambda _: None)
    assert not (tmp_path / "run").exists()


def test_every_test_bad_input_md_names_exists():
    """BAD_INPUT.md's last column names the file (and test) where each case is checked; a
    renamed or removed test would leave the table pointing at nothing."""
    import re
    from pathlib import Path

    here = Path(__file__).parent
    named = 0
    for row in (here / "BAD_INPUT.md").read_text().splitlines():
        where = row.rstrip(" |").rsplit("|", 1)[-1].strip()
        if not row.startswith("|") or where == "test" or where.startswith("---"):
            continue  # prose, the header and the rule under it
        source = ""
        for entry in where.split(","):
            entry = re.sub(r"\(.*?\)", "", entry).strip()
            path, _, test = entry.rpartition("::") if "::" in entry else (entry, "", "")
            if path.endswith(".py"):
                assert (here / path).is_file(), f"{path} (row: {row[:60]})"
                source = (here / path).read_text()
            elif path:  # a test of the file named before it in the entry
                test = path
            if test:
                assert re.search(rf"^def {test}\(", source, re.M), f"{test} (row: {row[:60]})"
                named += 1
    assert named >= 20
