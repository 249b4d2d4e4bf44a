"""`seqjax.load_run`: a run's model as a function, checked against `seqjax predict` on the
same run, under jax.grad and vmap, and refusing bad input by name."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax
from seqjax.cli import main
from seqjax.data.sources import load_splits
from seqjax.train.restore import load_run_config, predict, restore_state
from seqjax.trained import TrainedModel, load_run
from tests.runs import TINY_TREND, train_run

# One xdist worker runs this file, so its module fixtures train once.
pytestmark = pytest.mark.xdist_group("trained")


@pytest.fixture(scope="module")
def trust_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("trust") / "run"
    return str(train_run(run_dir, "configs/trust.yaml", "data.size=120", "train.epochs=2"))


@pytest.fixture(scope="module")
def trust_model(trust_run):
    return load_run(trust_run)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    """Users' raw data in large units with targets near 1,000: the run standardises both,
    so a prediction in the targets' units needs both scalers."""
    root = tmp_path_factory.mktemp("regression")
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 9, 60).astype(np.int32)
    x = 1500 + 20 * rng.standard_normal((60, 8, 2))  # (N, T, F) raw, e.g. degrees C
    x[np.arange(8) >= lengths[:, None]] = 0
    y = 1000 + (x[:, :, 0].sum(1) / lengths - 1500)  # (N,)
    np.savez(root / "data.npz", inputs=x, lengths=lengths, targets=y)
    sets = [f"data.source=npz:{root / 'data.npz'}", "train.loss=mse", "train.epochs=2"]
    sets.append("train.plots=false")
    run_dir = str(train_run(root / "run", "configs/steel_lightweight.yaml", *sets))
    return run_dir, x, lengths


def test_a_run_predicts_its_test_split_as_seqjax_predicts_it(trust_run):
    run = load_run(trust_run)
    cfg = load_run_config(trust_run)
    test = load_splits(cfg.data, cfg.train.loss)["test"]
    state, epoch = restore_state(trust_run, cfg, test)
    got = run(test.inputs, test.lengths)  # (N,) probabilities
    assert got.shape == (len(test),) and run.epoch == epoch
    np.testing.assert_allclose(got, predict(cfg, state, test), rtol=1e-6, atol=1e-7)
    assert seqjax.load_run is load_run and isinstance(run, TrainedModel)


def test_a_model_prints_as_one_line(trust_model):
    """Not its variables: the dataclass's repr ran to tens of thousands of characters."""
    said = repr(trust_model)
    params = sum(np.size(leaf) for leaf in jax.tree.leaves(trust_model.variables))
    assert said == (
        f"TrainedModel('trust', epoch {trust_model.epoch}, {params:,} variables, 768 "
        "features, loss 'binary_cross_entropy', on 1 device)"
    )


def test_the_latest_checkpoint_is_another_epochs_model(trust_run):
    best, latest = load_run(trust_run), load_run(trust_run, which="latest")
    assert latest.epoch == 2
    same = best.epoch == latest.epoch
    leaves = zip(*(jax.tree.leaves(r.variables) for r in (best, latest)), strict=True)
    assert all(np.array_equal(a, b) for a, b in leaves) == same


def test_restoring_a_checkpoint_lowers_no_program(trust_run):
    """The state is restored into its shapes (`state_shapes`), not into a fresh state,
    whose values computed the model's init and each op of the optimizer's init: 22 JAX
    programs lowered and compiled for a small trend run, seconds of every `seqjax
    evaluate`, `predict` and `load_run`, before any was scored."""
    from jax import monitoring

    from seqjax.train.restore import load_run_config, restore_state, run_data_spec

    cfg = load_run_config(trust_run)
    sample = run_data_spec(trust_run, cfg).sample()
    lowered = []

    def count(event, secs, **kw):
        if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
            lowered.append(event)

    monitoring.register_event_duration_secs_listener(count)
    try:
        state, epoch = restore_state(trust_run, cfg, sample)
    finally:
        monitoring.unregister_event_duration_listener(count)
    assert lowered == []
    assert epoch == load_run(trust_run).epoch and int(state.step) > 0


def test_apply_is_pure_under_grad_vmap_and_jit(trust_model):
    run = trust_model
    test = load_splits(run.config.data, run.config.train.loss)["test"]
    x, lengths = jnp.asarray(test.inputs[:4]), jnp.asarray(test.lengths[:4])
    saliency = jax.grad(lambda x: run.apply(run.variables, x, lengths).sum())(x)
    assert saliency.shape == x.shape and np.all(np.isfinite(saliency))
    assert float(jnp.abs(saliency).max()) > 0
    # one sequence at a time under vmap equals the batch
    one = jax.vmap(lambda xi, li: run.apply(run.variables, xi[None], li[None])[0])(x, lengths)
    np.testing.assert_allclose(one, run(x, lengths), rtol=1e-6, atol=1e-7)
    jitted = jax.jit(run.apply)(run.variables, x, lengths)
    np.testing.assert_allclose(jitted, run(np.asarray(x), np.asarray(lengths)), rtol=1e-6)
    # exported for any batch size, as a serving program
    (b,) = jax.export.symbolic_shape("b")
    exported = jax.export.export(jax.jit(run.apply))(
        run.variables,
        jax.ShapeDtypeStruct((b, *x.shape[1:]), x.dtype),
        jax.ShapeDtypeStruct((b,), lengths.dtype),
    )
    served = exported.call(run.variables, x[:3], lengths[:3])
    np.testing.assert_allclose(served, jitted[:3], rtol=1e-6, atol=1e-7)


def test_raw_users_data_is_scaled_and_predicted_in_the_targets_units(regression_run, tmp_path):
    run_dir, x, lengths = regression_run
    np.savez(tmp_path / "in.npz", inputs=x, lengths=lengths)
    out = tmp_path / "out.npz"
    argv = ["predict", run_dir, "--input", str(tmp_path / "in.npz"), "--output", str(out)]
    assert main(argv) == 0
    run = load_run(run_dir)
    got = run(x, lengths)
    assert run.spec.scaler is not None and run.spec.target_scaler is not None
    assert np.all(np.abs(got - 1000) < 200)  # the targets' units, not standardised ones
    np.testing.assert_allclose(got, np.load(out)["predictions"], rtol=1e-6)
    scaled = run.scale(x, lengths)
    np.testing.assert_allclose(run(scaled, lengths, scaled=True), got, rtol=1e-6)


def test_a_trend_run_gives_each_horizons_score_and_direction_probabilities(tmp_path):
    run = load_run(str(train_run(tmp_path / "run", "configs/trend.yaml", *TINY_TREND)))
    test = load_splits(run.config.data, run.config.train.loss)["test"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the training length: no note
        got = run(test.inputs, test.lengths)  # (N, horizons, score + 3 probabilities)
    assert got.shape == (len(test), 2, 4)
    np.testing.assert_allclose(got[..., 1:].sum(-1), 1.0, rtol=1e-5)
    # 20 weeks to a run of 12-week windows: scored, with the note `seqjax predict` gives
    longer = np.concatenate([test.inputs, test.inputs[:, :8]], axis=1)  # (N, 20, F)
    with pytest.warns(UserWarning, match=r"1 of 1 sequences in the inputs are longer than"):
        run(longer[:1], np.array([20]))


def test_a_set_larger_than_a_batch_runs_in_batches_of_one_shape(trust_run):
    """A large set runs batch by batch, each call the same shape (the last batch completed
    with copies of a row), giving the one call's predictions in the set's order."""
    run = load_run(trust_run)
    test = load_splits(run.config.data, run.config.train.loss)["test"]
    x, lengths = test.inputs, test.lengths  # (N, T, F), N = 18
    whole = run(x, lengths, batch_size=len(x))  # one call over every row
    shapes = []

    def recording(variables, inputs, lengths):
        shapes.append((inputs.shape, lengths.shape))
        return jax.jit(run.apply)(variables, inputs, lengths)

    run.__dict__["_jitted"] = recording  # the cached jit this model calls
    got = run(x, lengths, batch_size=4)
    assert shapes == [((4, *x.shape[1:]), (4,))] * 5  # 18 rows: 4 full batches and 2 rows
    np.testing.assert_allclose(got, whole, rtol=1e-6, atol=1e-7)
    shapes.clear()
    assert run(x[:3], lengths[:3], batch_size=4).shape == (3,)
    assert shapes == [((3, *x.shape[1:]), (3,))]  # no larger than a batch: as it is
    assert run.config.train.batch_size == 32
    shapes.clear()
    run(x, lengths)  # the run's own batch size: 18 rows in one call
    assert shapes == [((len(x), *x.shape[1:]), (len(x),))]


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A run of two LSTM layers on sequences of 130 steps: on a CPU its layers run in
    length groups, whose per-shard loops read the mesh from the arrays' types, and the
    second layer's inputs are the first's outputs, typed by the weights too."""
    root = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 131, 50).astype(np.int32)  # (N,)
    x = rng.standard_normal((50, 130, 2)).astype(np.float32)  # (N, T, F) raw
    x[np.arange(130) >= lengths[:, None]] = 0
    y = (x[:, :, 0].sum(1) > 0).astype(np.int32)
    np.savez(root / "data.npz", inputs=x, lengths=lengths, targets=y)
    sets = [f"data.source=npz:{root / 'data.npz'}", "train.epochs=1", "train.min_epochs=0"]
    sets += ["train.plots=false", "model.num_layers=2"]
    return str(train_run(root / "run", "configs/steel_lightweight.yaml", *sets)), root / "data.npz"


MESH_SCRIPT = """
import json
import jax, numpy as np
from seqjax.train.sharding import make_mesh
from seqjax.trained import load_run

one, two = load_run(RUN), load_run(RUN, mesh=make_mesh())
with np.load(DATA) as f:
    x, n = f["inputs"][:18], f["lengths"][:18]  # raw, as a user's file holds them
calls = []

def recording(variables, inputs, lengths):
    spread = [len(a.sharding.device_set) for a in (inputs, lengths)]  # devices each is on
    calls.append([inputs.shape[0], *spread])
    return jax.jit(two.apply)(variables, inputs, lengths)

alone = one(x, n)  # one device, in a process of two: before, this failed to run
two.__dict__["_jitted"] = recording
whole, odd = two(x, n), two(x[:5], n[:5])  # 18 rows in one call; 5 rows padded to 6
batched = two(x, n, batch_size=5)  # 5 a call rounded up to 6: three calls
print(json.dumps({
    "devices": jax.device_count(),
    "calls": calls,
    "variables_on": sorted({len(v.sharding.device_set) for v in jax.tree.leaves(two.variables)}),
    "diff": float(np.abs(whole - alone).max()),
    "odd_diff": float(np.abs(odd - alone[:5]).max()),
    "batched_diff": float(np.abs(batched - whole).max()),
    "shapes": [list(whole.shape), list(odd.shape), list(batched.shape)],
}))
"""


def test_a_model_on_a_mesh_splits_each_call_over_its_devices(long_run):
    """`load_run(mesh=...)`: the variables replicated on two CPU devices, each call's rows
    split over them (a call rounded up to a whole number of rows each), the predictions
    those of one device; and `load_run` without a mesh runs on one device of the two."""
    from tests.cpu_devices_subprocess import run_on_cpu_devices

    run_dir, data = long_run
    script = MESH_SCRIPT.replace("RUN", repr(run_dir)).replace("DATA", repr(str(data)))
    out = run_on_cpu_devices(script, count=2)
    assert out["devices"] == 2 and out["variables_on"] == [2]
    assert out["calls"] == [[18, 2, 2], [6, 2, 2], [6, 2, 2], [6, 2, 2], [6, 2, 2]]
    assert out["shapes"] == [[18], [5], [18]]
    assert max(out["diff"], out["odd_diff"], out["batched_diff"]) < 1e-6


def test_a_mesh_without_a_data_axis_is_named(trust_run):
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("batch",))
    with pytest.raises(ValueError, match=r"the mesh needs a 'data' axis to split the rows over"):
        load_run(trust_run, mesh=mesh)


@pytest.mark.parametrize(
    "batch_size, error, message",
    [(0, ValueError, "batch_size must be >= 1; got 0"), (2.0, TypeError, "must be an int")],
)
def test_a_batch_size_that_is_not_a_positive_int_is_named(trust_model, batch_size, error, message):
    test = load_splits(trust_model.config.data, trust_model.config.train.loss)["test"]
    with pytest.raises(error, match=message):
        trust_model(test.inputs, test.lengths, batch_size=batch_size)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, n: (x[..., :700], n), "inputs have 700 features but the parameters were built"),
        (lambda x, n: (x[0], n), r"inputs must have rank 3"),
        (lambda x, n: (x.astype(np.int32), n), "inputs must be a floating dtype"),
        (lambda x, n: (np.where(x == x.max(), np.nan, x), n), "inputs contain NaN or Inf"),
        (lambda x, n: (x, n + 5), r"lengths must lie in \[1, 2\]"),
        (lambda x, n: (x, n.astype(np.float32)), "lengths must be an integer dtype"),
        (lambda x, n: (x, n[:-1]), r"lengths must have shape \(4,\)"),
    ],
)
def test_bad_inputs_are_named_before_anything_runs(trust_model, change, message):
    run = trust_model
    test = load_splits(run.config.data, run.config.train.loss)["test"]
    inputs, lengths = change(test.inputs[:4], test.lengths[:4])
    with pytest.raises((ValueError, TypeError), match=message):
        run(inputs, lengths)


def test_a_cross_validation_or_a_plain_directory_is_refused_by_name(trust_run, tmp_path):
    (tmp_path / "cv" / "fold_0").mkdir(parents=True)
    (tmp_path / "cv" / "fold_0" / "config.yaml").write_text("")
    with pytest.raises(ValueError, match=r"is a cross-validation: seqjax.load_cv\('.*cv'\) loads"):
        load_run(str(tmp_path / "cv"))
    with pytest.raises(ValueError, match=r"has not finished .*load_run\('.*fold_0'\)"):
        seqjax.load_cv(str(tmp_path / "cv"))  # folds without cv.json: it stopped
    with pytest.raises(ValueError, match="is not a cross-validation .* read by load_run"):
        seqjax.load_cv(trust_run)
    with pytest.raises(FileNotFoundError, match="is not a run directory: it has no config.yaml"):
        load_run(str(tmp_path))
    with pytest.raises(ValueError, match="checkpoint must be 'best' or 'latest'"):
        load_run(trust_run, which="first")
