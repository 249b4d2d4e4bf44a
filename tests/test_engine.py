"""The train step, the optimizer chain and the loop's failure handling."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.config import OptimizerConfig, load_config
from seqjax.data.batch import make_batch
from seqjax.data.dataset import SequenceDataset
from seqjax.models import build_model
from seqjax.tasks import get_task
from seqjax.train import loop as loop_module
from seqjax.train.monitor import logged_names
from seqjax.train.optim import learning_rate, make_optimizer
from seqjax.train.state import create_state
from seqjax.train.step import make_train_step

MODEL = build_model("trust", hidden_sizes=(6, 5, 4), features=7)
RNG = np.random.default_rng(0)


def _state(opt_cfg: OptimizerConfig | None = None, total_steps=10):
    opt_cfg = opt_cfg or OptimizerConfig()
    x = np.zeros((1, 2, 7), np.float32)
    return create_state(MODEL, make_optimizer(opt_cfg, total_steps), x, np.array([2]), seed=0)


def _rows(n):
    return (
        RNG.standard_normal((n, 2, 7)).astype(np.float32),
        RNG.integers(1, 3, n).astype(np.int32),
        RNG.integers(0, 2, n).astype(np.float32),
    )


def test_zero_weight_padding_examples_change_nothing():
    step = jax.jit(make_train_step(get_task("binary_cross_entropy").loss))
    real = _rows(5)
    states = []
    for _ in range(2):  # two different sets of garbage padding rows
        pad = _rows(3)
        batch = make_batch(
            *(np.concatenate([a, b]) for a, b in zip(real, pad, strict=True)),
            weights=np.r_[np.ones(5), np.zeros(3)],
        )
        states.append(step(_state(), batch)[0])
    unpadded, m = step(_state(), make_batch(*real))
    for a, b, c in zip(*(jax.tree.leaves(s.params) for s in (*states, unpadded)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-5, atol=1e-6)


def test_a_step_changes_every_parameter():
    step = jax.jit(make_train_step(get_task("binary_cross_entropy").loss))
    before = _state()
    after, metrics = step(before, make_batch(*_rows(8)))
    assert int(after.step) == 1 and np.isfinite(float(metrics["loss"]))
    for a, b in zip(jax.tree.leaves(before.params), jax.tree.leaves(after.params), strict=True):
        assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_frozen_parameter_groups_do_not_move():
    step = jax.jit(make_train_step(get_task("binary_cross_entropy").loss))
    cfg = OptimizerConfig(freeze=("lstm1/", "fc/bias"))
    state = _state(cfg)
    start = jax.device_get(state.params)
    for _ in range(3):
        state, _ = step(state, make_batch(*_rows(8)))
    flat = jax.tree_util.tree_leaves_with_path(jax.device_get(state.params))
    before = dict(jax.tree_util.tree_leaves_with_path(start))
    for path, value in flat:
        name = jax.tree_util.keystr(path)
        frozen = "'lstm1'" in name or ("'fc'" in name and "'bias'" in name)
        assert np.array_equal(value, before[path]) == frozen, name


def test_unknown_freeze_prefix_is_named():
    with pytest.raises(ValueError, match=r"freeze prefix 'lstm9/' matches no parameter"):
        _state(OptimizerConfig(freeze=("lstm9/",)))


def test_warmup_cosine_schedule():
    cfg = OptimizerConfig(lr=1e-2, schedule="warmup_cosine", warmup_steps=4, end_lr_factor=0.1)
    state = _state(cfg, total_steps=12)
    step = jax.jit(make_train_step(get_task("binary_cross_entropy").loss))
    rates = []
    for _ in range(12):
        state, _ = step(state, make_batch(*_rows(4)))
        rates.append(learning_rate(state.opt_state))
    peak = int(np.argmax(rates))
    assert rates[peak] == pytest.approx(1e-2, rel=1e-5)
    assert all(a < b for a, b in zip(rates[:peak], rates[1 : peak + 1], strict=True))
    assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1 :], strict=False))
    # The logged rate is the one the last update used, one step before the schedule's end.
    assert 1e-3 <= rates[-1] < 0.2 * rates[peak]


def _nan_targets_in_epoch_2_batch_3(monkeypatch):
    """Corrupt data: the fit loop's third training batch of epoch 2 gets NaN targets."""
    real_iterate = loop_module.iterate_batches

    def corrupting(data, batch_size, **kw):
        batches = real_iterate(data, batch_size, **kw)
        for i, batch in enumerate(batches, start=kw.get("start", 0)):
            if kw.get("shuffle") and kw.get("epoch") == 1 and i == 2:
                batch = batch.replace(targets=np.full_like(batch.targets, np.nan))
            yield batch

    monkeypatch.setattr(loop_module, "iterate_batches", corrupting)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch
):
    """Corrupt data arrives in epoch 2; epoch 1's checkpoint must stay usable."""
    _nan_targets_in_epoch_2_batch_3(monkeypatch)
    cfg = load_config(
        "configs/trust.yaml",
        [
            "data.size=200",
            "train.epochs=3",
            "model.hidden_sizes=[4, 4, 4]",
            "checkpoint.async_save=false",
        ],
    )
    from seqjax.data.sources import load_splits

    splits = load_splits(cfg.data)
    per_epoch = -(-len(splits["train"]) // 32)
    with pytest.raises(FloatingPointError, match=rf"at step {per_epoch + 3} \(epoch 2\)"):
        loop_module.fit(cfg, splits, run_dir=str(tmp_path), log=lambda _: None)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]


def test_nonfinite_skip_keeps_the_state_and_counts_the_update(monkeypatch):
    _nan_targets_in_epoch_2_batch_3(monkeypatch)
    cfg = load_config(
        "configs/trust.yaml",
        [
            "data.size=200",
            "train.epochs=2",
            "model.hidden_sizes=[4, 4, 4]",
            "checkpoint.enabled=false",
            "train.nonfinite=skip",
        ],
    )
    from seqjax.data.sources import load_splits

    splits = load_splits(cfg.data)
    result = loop_module.fit(cfg, splits, log=lambda _: None)
    assert [row["skipped_updates"] for row in result.history] == [0, 1]
    # the names the monitor check accepts before a run are the logged row's
    shape = loop_module.check_outputs_fit_targets(cfg, splits["train"])
    assert sorted(result.history[0]) == logged_names(
        "binary_cross_entropy", "skip", splits["val"], shape
    )
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    assert all(np.all(np.isfinite(p)) for p in jax.tree.leaves(result.state.params))


@pytest.mark.parametrize(
    "every_steps, saved",
    [(0, "epoch 1's checkpoint"), (2, "step 6")],  # step 8 is bad: its save is refused
)
def test_a_run_stopped_at_a_non_finite_step_resumes_past_it_with_the_command_it_names(
    tmp_path, monkeypatch, capsys, every_steps, saved
):
    """`seqjax train` stops at the bad step with one line (no traceback) that names the
    command resuming from the last good checkpoint with `train.nonfinite=skip`; that
    command, as printed, skips the step and finishes the run. With in-epoch checkpoints
    the state after the bad step is never saved: the resume starts before it."""
    from seqjax import cli

    _nan_targets_in_epoch_2_batch_3(monkeypatch)
    sets = ["data.size=200", "train.epochs=3", "model.hidden_sizes=[4, 4, 4]"]
    sets += ["train.plots=false", f"checkpoint.every_steps={every_steps}"]
    argv = ["train", "--config", "configs/trust.yaml", "--run-dir", str(tmp_path)]
    assert cli.main([*argv, "--set", *sets]) == 1
    resume = (
        f"seqjax train --config {tmp_path}/config.yaml --run-dir {tmp_path} --resume "
        "--set train.nonfinite=skip"
    )
    step = -(-140 // 32) + 3  # epoch 2's third step; 140 = 0.7 of 200 examples train
    assert capsys.readouterr().err == (
        f"seqjax: error: non-finite training loss or gradient at step {step} (epoch 2); "
        f"nothing after {saved} was saved; skip such updates and go on with: {resume}\n"
    )
    assert cli.main(resume.split()[1:]) == 0
    out = capsys.readouterr().out
    assert ("resumed from step 6, in epoch 2" in out) == (every_steps == 2)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [row.get("skipped_updates") for row in history] == [None, 1, 0]
    assert all(np.isfinite(row["train_loss"]) for row in history)


def test_dataset_rejects_non_finite_inputs():
    x = np.zeros((2, 3, 1), np.float32)
    x[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        SequenceDataset(x, np.array([3, 3]), np.zeros(2))


def test_state_rng_is_a_plain_key_array():
    assert _state().rng.dtype == jnp.uint32


def test_same_config_and_seed_train_bit_identically():
    """Two runs of one config (dropout, shuffling, a short last batch) on one device agree
    exactly: every logged value and every parameter bit."""
    from seqjax.data.sources import load_splits

    cfg = load_config(
        "configs/steel_lightweight.yaml",
        ["data.size=90", "train.epochs=2", "train.batch_size=16", "checkpoint.enabled=false"],
    )
    runs = [
        loop_module.fit(cfg, load_splits(cfg.data), log=lambda _: None, show_progress=False)
        for _ in range(2)
    ]
    assert runs[0].history == runs[1].history and len(runs[0].history) == 2
    leaves = [jax.tree.leaves(jax.device_get(r.state.params)) for r in runs]
    assert all(np.array_equal(a, b) for a, b in zip(*leaves, strict=True))


def test_loop_graphs_reach_xla_and_change_no_result(monkeypatch):
    """`train.loop_graphs: true` compiles the steps with LOOP_GRAPHS: the run equals one
    without (on CPU, which ignores them, and on a GPU, which runs the same kernels from a
    graph), and a value XLA refuses fails the run, so the options do reach XLA."""
    from seqjax.data.sources import load_splits
    from seqjax.loop_graphs import LOOP_GRAPHS

    settings = ["data.size=60", "train.epochs=1", "train.batch_size=16"]
    settings.append("checkpoint.enabled=false")
    plain = load_config("configs/steel_lightweight.yaml", settings)
    graphs = load_config("configs/steel_lightweight.yaml", [*settings, "train.loop_graphs=true"])
    splits = load_splits(plain.data)

    def fit(cfg):
        return loop_module.fit(cfg, splits, log=lambda _: None, show_progress=False)

    runs = [fit(plain), fit(graphs)]
    # equal to float32 rounding: a GPU may autotune the two compiles' kernels differently
    assert runs[1].history == [pytest.approx(row, rel=1e-5) for row in runs[0].history]
    leaves = [jax.tree.leaves(jax.device_get(r.state.params)) for r in runs]
    for a, b in zip(*leaves, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    refused = {**LOOP_GRAPHS, "xla_gpu_enable_command_buffer": "WHILE,LOOPS"}
    monkeypatch.setattr(loop_module, "LOOP_GRAPHS", refused)
    loop_module.compile_steps.cache_clear()
    try:
        with pytest.raises(Exception, match="not a valid enum value"):
            fit(graphs)
    finally:
        loop_module.compile_steps.cache_clear()  # no step compiled with the refused value
