"""The README's main job, shrunk: `seqjax train`, then `evaluate` and `predict` on its run."""

import json
import os

import numpy as np
import pytest

from seqjax.cli import main

# One xdist worker runs this file (`--dist loadgroup`), so its module fixtures, trained
# runs, are trained once, not once in each worker that draws one of its tests.
pytestmark = pytest.mark.xdist_group("cli")

TINY = ["data.size=300", "train.epochs=2", "model.hidden_sizes=[8, 8, 4]"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    rc = main(
        [
            "train",
            "--config",
            "configs/trust.yaml",
            "--run-dir",
            str(run_dir),
            "--set",
            *TINY,
            "train.tensorboard=true",
        ]
    )
    assert rc == 0
    return run_dir


def test_train_writes_a_complete_run_directory(run_dir):
    assert sorted(os.listdir(run_dir)) == [
        "checkpoints",
        "config.yaml",
        "data_spec.json",
        "environment.json",
        "history.csv",
        "history.json",
        "metrics.json",
        "plots",
        "tensorboard",
        "timings.json",
    ]
    assert not [n for n in os.listdir(run_dir) if n.startswith(".tmp")]
    assert sorted(os.listdir(run_dir / "plots")) == [
        "confusion_matrix.png",
        "loss.png",
        "metrics.png",
        "pr.png",
        "reliability.png",
        "roc.png",
    ]
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(run_dir / "tensorboard"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["test"]) >= {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "auc_roc",
        "confusion_matrix",
    }
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == 45
    history = json.loads((run_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert (run_dir / "history.csv").read_text().splitlines()[0].startswith("epoch,train_loss")


def test_evaluate_reproduces_the_test_metrics_of_the_best_checkpoint(run_dir, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--checkpoint", "best", "--split", "test"]) == 0
    out = json.loads(capsys.readouterr().out)
    saved = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert "loss" in saved
    assert {k: out[k] for k in saved} == saved  # the loss too: the same eval pass as train's


@pytest.mark.parametrize("suffix", ["npz", "csv"])
def test_predict_writes_probabilities(run_dir, tmp_path, suffix):
    inputs = np.random.default_rng(0).standard_normal((5, 2, 768)).astype(np.float32)
    np.savez(tmp_path / "in.npz", inputs=inputs, lengths=np.full(5, 2, np.int32))
    out = tmp_path / f"out.{suffix}"
    assert (
        main(["predict", str(run_dir), "--input", str(tmp_path / "in.npz"), "--output", str(out)])
        == 0
    )
    if suffix == "npz":
        with np.load(out, allow_pickle=False) as f:
            preds, columns = f["predictions"], list(f["columns"])
    else:
        preds = np.loadtxt(out, delimiter=",", skiprows=1)
        columns = out.read_text().splitlines()[0].split(",")
    assert columns == ["probability"]
    assert preds.shape == (5,) and np.all((preds >= 0) & (preds <= 1))


def test_predict_rejects_inputs_of_the_wrong_width(run_dir, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", inputs=np.zeros((2, 2, 5), np.float32))
    rc = main(
        [
            "predict",
            str(run_dir),
            "--input",
            str(tmp_path / "in.npz"),
            "--output",
            str(tmp_path / "o.npz"),
        ]
    )
    assert rc == 2
    assert "inputs have 5 features; the model" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    rc = main(
        [
            "train",
            "--config",
            "configs/trust.yaml",
            "--run-dir",
            str(tmp_path / "r"),
            "--set",
            "train.epoch=1",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key train.'epoch'" in err[0]
    assert not (tmp_path / "r").exists()


def test_evaluate_takes_a_split_or_an_input_and_scaled_only_with_an_input(tmp_path, capsys):
    """Before, `--input F --split val` scored F and dropped the split, and --inputs-scaled
    without --input was ignored."""
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(tmp_path), "--input", "new.npz", "--split", "val"])
    assert exit_.value.code == 2
    assert "argument --split: not allowed with argument --input" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--inputs-scaled"]) == 2
    assert "--inputs-scaled applies to --input data" in capsys.readouterr().err


def test_train_without_a_config_needs_a_run_to_resume(tmp_path, capsys, monkeypatch):
    """`seqjax train --run-dir RUN --resume` reads RUN/config.yaml; anything else needs
    --config, and says so; and --resume needs the --run-dir it continues."""
    assert main(["train", "--run-dir", str(tmp_path)]) == 2
    assert "needs --config (or --run-dir RUN --resume)" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(tmp_path), "--resume"]) == 2
    assert f"--resume: {str(tmp_path)!r} has no config.yaml" in capsys.readouterr().err
    # before, this trained a new run under runs/trust-TIME, with nothing to resume
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "trust", "--resume"]) == 2
    assert "--resume continues the run in --run-dir: give --run-dir RUN" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--distributed"], "several processes train one run: give them --run-dir"),
        (["--coordinator", "h:1", "--num-processes", "2"], "go together; missing --process-id"),
        (["--coordinator", "h", "--num-processes", "2", "--process-id", "0"], "be HOST:PORT"),
        (["--coordinator", "h:1", "--num-processes", "0", "--process-id", "0"], "at least 1"),
        (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "in 0..1 for"),
    ],
)
def test_several_processes_options_are_checked_before_any_process_waits(
    tmp_path, capsys, flags, message
):
    """A wrong process id would otherwise wait minutes for a partner that never comes."""
    run = [] if flags == ["--distributed"] else ["--run-dir", str(tmp_path / "run")]
    assert main(["train", "--config", "trust", *run, *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--distributed"], "several processes cross-validate into one directory: give them"),
        (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "in 0..1 for"),
    ],
)
def test_a_cross_validation_checks_its_several_processes_options_too(
    tmp_path, capsys, flags, message
):
    rng = np.random.default_rng(0)
    npz = tmp_path / "data.npz"
    np.savez(npz, inputs=rng.standard_normal((30, 4, 2)), targets=rng.integers(0, 2, 30))
    run = [] if flags == ["--distributed"] else ["--run-dir", str(tmp_path / "cv")]
    command = ["cv", "--config", "steel_lightweight", "--folds", "3", *run, *flags]
    assert main([*command, "--set", f"data.source=npz:{npz}"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cv").exists()


MPI_JOB_WITHOUT_MPI4PY = {
    "OMPI_COMM_WORLD_SIZE": "2",
    "OMPI_COMM_WORLD_RANK": "0",
    "OMPI_COMM_WORLD_LOCAL_RANK": "0",
    "OMPI_VERSION": "5.0.11",
}


@pytest.mark.parametrize(
    "cluster,message",
    [
        ({}, "--distributed: JAX found no cluster to join"),
        (
            MPI_JOB_WITHOUT_MPI4PY,
            "--distributed: one of 2 processes that Open MPI's launcher started",
        ),
    ],
    ids=["no cluster", "an Open MPI 5 job without mpi4py"],
)
def test_distributed_outside_a_cluster_jax_detects_names_the_options_to_give(
    tmp_path, cluster, message
):
    """A fresh process: JAX's distributed system starts only before JAX first runs. Without
    a cluster JAX detects (none here: their variables are removed), or in an MPI job it
    reaches only through mpi4py (Open MPI 5's mpirun sets the variables given; mpi4py is
    hidden), the error says what to give instead, and nothing is written."""
    import subprocess
    import sys

    from tests.multiprocess_check import outside_clusters

    env = outside_clusters()
    hide_mpi4py = "import sys; sys.modules['mpi4py'] = None; from seqjax.cli import main; "
    command = ["train", "--config", "trust", "--distributed", "--run-dir", str(tmp_path / "run")]
    proc = subprocess.run(
        [sys.executable, "-c", hide_mpi4py + f"sys.exit(main({command!r}))"],
        capture_output=True,
        text=True,
        env={**env, **cluster},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "give each process --coordinator HOST:PORT" in proc.stderr
    if cluster:
        assert "pip install mpi4py" in proc.stderr
        assert "--num-processes $OMPI_COMM_WORLD_SIZE --process-id $OMPI_COMM_WORLD_RANK" in (
            proc.stderr
        )
    assert not (tmp_path / "run").exists()


def test_a_process_of_an_mpi_job_without_distributed_is_told_it_works_alone(
    tmp_path, monkeypatch, capsys
):
    """Under `mpirun -n 2 seqjax evaluate RUN` without --distributed each process would
    score alone: a note says so (here before the error for a run that is not there)."""
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "note: this is one of 2 processes that Open MPI's launcher started" in err
    assert "without --distributed each works alone" in err
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")  # a job of one: nothing to say
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "note:" not in capsys.readouterr().err


def test_a_second_run_into_the_same_directory_is_refused(run_dir, capsys):
    before = (run_dir / "config.yaml").read_text()
    rc = main(
        [
            "train",
            "--config",
            "configs/trust.yaml",
            "--run-dir",
            str(run_dir),
            "--set",
            *TINY,
            "train.epochs=3",
        ]
    )
    assert rc == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    assert (run_dir / "config.yaml").read_text() == before


def test_version_names_seqjax_and_its_libraries(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("seqjax 0.1.0 (jax ") and "flax " in out


def test_ctrl_c_outside_training_exits_130_with_one_line(monkeypatch, capsys):
    import seqjax.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "evaluate_command", interrupted)
    assert cli.main(["evaluate", "runs/x"]) == 130
    assert capsys.readouterr().err == "seqjax: interrupted\n"


def test_metrics_a_split_leaves_undefined_are_null_in_files_and_printout(tmp_path, capsys):
    """A test split with no positive has no AUC: metrics.json and `evaluate` say null,
    not Python's bare NaN, which JSON has not (JavaScript's JSON.parse refuses it)."""
    from seqjax.data.splits import split_indices

    n = 40
    test = split_indices(n, (0.7, 0.15, 0.15), seed=0)[2]
    targets = np.zeros(n, np.float32)
    targets[np.setdiff1d(np.arange(n), test)[::2]] = 1.0
    data = tmp_path / "no_positive_in_test.npz"
    rng = np.random.default_rng(0)
    np.savez(data, inputs=rng.normal(size=(n, 6, 5)), lengths=np.full(n, 6), targets=targets)
    run = tmp_path / "run"
    settings = [f"data.source=npz:{data}", "train.epochs=1", "train.batch_size=8"]
    assert (
        main(["train", "--config", "steel_lightweight", "--run-dir", str(run), "--set", *settings])
        == 0
    )
    assert main(["evaluate", str(run), "--split", "test"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    refuse = lambda word: pytest.fail(f"not JSON: {word}")  # noqa: E731
    for text in [(run / name).read_text() for name in ("metrics.json", "history.json")] + [
        printed[-2].removeprefix("test metrics: "),
        printed[-1],
    ]:
        json.loads(text, parse_constant=refuse)
    test_metrics = json.loads((run / "metrics.json").read_text())["test"]
    assert test_metrics["auc_roc"] is None and test_metrics["auc_pr"] is None
    assert json.loads(printed[-1])["auc_roc"] is None and test_metrics["accuracy"] > 0


def test_evaluate_counts_positives_from_the_threshold_given(run_dir, capsys):
    """`--threshold` moves the metrics that count positives, and only those: they equal the
    metrics of the run's own predictions at that probability; the loss and AUCs stay."""
    from seqjax.data.sources import load_splits
    from seqjax.metrics import best_f1_threshold, binary_classification
    from seqjax.train.restore import load_run_config, predict, restore_state

    cfg = load_run_config(str(run_dir))
    test = load_splits(cfg.data)["test"]
    state, _ = restore_state(str(run_dir), cfg, test)
    probabilities = predict(cfg, state, test)
    middle = round(float(np.median(probabilities)), 6)  # about half counted positive
    ours = binary_classification(probabilities, test.targets, threshold=middle)
    scored = {}
    for threshold in (None, middle, 0.0):
        capsys.readouterr()
        extra = [] if threshold is None else ["--threshold", str(threshold)]
        assert main(["evaluate", str(run_dir), "--split", "test", *extra]) == 0
        scored[threshold] = json.loads(capsys.readouterr().out)
    assert scored[middle]["threshold"] == middle and "threshold" not in scored[None]
    for key in ("accuracy", "precision", "recall", "f1"):
        assert scored[middle][key] == pytest.approx(ours[key]), key
    assert scored[middle]["confusion_matrix"] == ours["confusion_matrix"]
    assert scored[middle]["confusion_matrix"] != scored[None]["confusion_matrix"]
    for key in ("loss", "auc_roc", "auc_pr"):
        assert scored[middle][key] == scored[None][key] == scored[0.0][key], key
    assert scored[0.0]["recall"] == 1.0 and scored[0.0]["confusion_matrix"][0][0] == 0
    assert main(["evaluate", str(run_dir), "--threshold", "1.5"]) == 2
    assert capsys.readouterr().err == "seqjax: error: --threshold must lie in [0, 1]; got 1.5\n"

    # val-f1: the threshold that gives the validation split its best F1, on the test split
    val = load_splits(cfg.data)["val"]
    chosen = best_f1_threshold(predict(cfg, state, val), val.targets)
    assert main(["evaluate", str(run_dir), "--split", "test", "--threshold", "val-f1"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["threshold"] == chosen and "validation" in line["threshold_from"]
    at_chosen = binary_classification(probabilities, test.targets, threshold=chosen)
    assert line["f1"] == pytest.approx(at_chosen["f1"])
    assert line["confusion_matrix"] == at_chosen["confusion_matrix"]
