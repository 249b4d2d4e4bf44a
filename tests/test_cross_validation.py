"""Cross-validation (`data.folds`, `seqjax cv`), stratified splits (`data.split:
stratified`), groups (`data.groups`) and walk-forward folds of a user's own npz or CSV:
every sequence tested once, each class's share kept, each group whole, the future tested
on the past only; an interrupted cross-validation resumed to its summary, out-of-fold
predictions, and the folds' models predicting and evaluated together."""

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from seqjax.calibration import fit, recalibrate
from seqjax.cli import main
from seqjax.config import load_config
from seqjax.data.external import csv_splits, npz_splits
from seqjax.data.raw_inputs import read_prediction_inputs
from seqjax.data.sources import load_splits
from seqjax.data.spec import DataSpec
from seqjax.data.splits import SplitPlan, fold_indices, split_indices
from seqjax.metrics import multiclass_classification
from seqjax.train.restore import load_run_config, predict, restore_state
from seqjax.trained_ensemble import load_cv
from tests.approx_tree import approx_tree

LABELS = np.repeat([0, 1, 2], [40, 7, 3])  # (50,): a rare class and a rarer one


@pytest.mark.parametrize("stratified", [False, True])
def test_folds_partition_the_data_and_each_is_tested_and_validated_once(stratified):
    labels = LABELS if stratified else None
    parts = [fold_indices(len(LABELS), 5, k, seed=3, labels=labels) for k in range(5)]
    for train, val, test in parts:
        assert len(test) == len(val) == 10 and len(train) == 30
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val, test])), np.arange(50))
    tests = np.concatenate([test for _, _, test in parts])
    vals = np.concatenate([val for _, val, _ in parts])
    np.testing.assert_array_equal(np.sort(tests), np.arange(50))
    np.testing.assert_array_equal(np.sort(vals), np.arange(50))
    for k in range(5):  # fold k + 1 validates fold k's model and tests the next one
        np.testing.assert_array_equal(parts[k][1], parts[(k + 1) % 5][2])
    counts = np.array([np.bincount(LABELS[test], minlength=3) for _, _, test in parts])
    if stratified:  # each class dealt evenly: 40 -> 8 a fold, 7 -> 1 or 2, 3 -> 0 or 1
        assert (counts[:, 0] == 8).all() and set(counts[:, 1]) == {1, 2}
        assert counts[:, 2].max() == 1
    else:  # a random deal of this seed leaves one fold without class 1
        assert counts[:, 1].min() == 0


def test_ordered_folds_walk_forward_and_test_each_block_after_the_second_once():
    """An ordered split's folds (time series): fold k trains on blocks 0..k of 6, validates
    on block k+1 and tests on block k+2, the first `gap` of each later block left out."""
    blocks = np.array_split(np.arange(60), 6)
    tests = []
    for k in range(4):
        train, val, test = fold_indices(60, 4, k, ordered=True, gap=2)
        np.testing.assert_array_equal(train, np.concatenate(blocks[: k + 1]))
        np.testing.assert_array_equal(val, blocks[k + 1][2:])
        np.testing.assert_array_equal(test, blocks[k + 2][2:])
        assert train.max() < val.min() and val.max() < test.min()  # the past, then the future
        tests.append(test)
    np.testing.assert_array_equal(
        np.concatenate(tests), np.concatenate([b[2:] for b in blocks[2:]])
    )
    with pytest.raises(
        ValueError, match=r"walk forward through 12 examples in 6 blocks of about 2"
    ):
        fold_indices(12, 4, 0, ordered=True, gap=2)


def test_a_stratified_split_keeps_each_class_share_and_a_random_one_is_unchanged():
    train, val, test = split_indices(50, (0.6, 0.2, 0.2), seed=3, labels=LABELS)
    assert [np.bincount(LABELS[p], minlength=3).tolist() for p in (train, val, test)] == [
        [24, 4, 2],  # 40 * 0.6, round(7 * 0.6), round(3 * 0.6)
        [8, 2, 0],  # 7: cut at round(4.2) = 4 and round(5.6) = 6
        [8, 1, 1],
    ]
    assert all((np.diff(p) > 0).all() for p in (train, val, test))  # in data order
    order = np.random.default_rng(3).permutation(50)  # the random split as it always was
    np.testing.assert_array_equal(np.concatenate(split_indices(50, (0.6, 0.2, 0.2), seed=3)), order)


@pytest.fixture
def imbalanced(tmp_path):
    """An npz of 50 sequences whose class shows as a bump in channel 0 or 1."""
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(50, 8, 2)).astype(np.float32)
    for i in np.flatnonzero(LABELS):
        inputs[i, 2:5, LABELS[i] - 1] += 2.0
    path = tmp_path / "imbalanced.npz"
    np.savez(path, inputs=inputs, targets=LABELS)
    return path


def test_a_users_npz_takes_the_fold_and_stratified_splits(imbalanced):
    splits = npz_splits(
        str(imbalanced),
        SplitPlan(seed=3, fractions=(0.7, 0.15, 0.15), split="stratified", folds=5, fold=2),
    )
    train, val, test = fold_indices(50, 5, 2, seed=3, labels=LABELS)
    for name, idx in zip(("train", "val", "test"), (train, val, test), strict=True):
        np.testing.assert_array_equal(splits[name].targets, LABELS[idx])
        np.testing.assert_array_equal(splits[name].ids, idx)  # an npz's rows
    forward = npz_splits(
        str(imbalanced), SplitPlan(seed=3, split="ordered", gap=1, folds=5, fold=2)
    )
    for name, idx in zip(
        ("train", "val", "test"), fold_indices(50, 5, 2, ordered=True, gap=1), strict=True
    ):
        np.testing.assert_array_equal(forward[name].ids, idx)
    with pytest.raises(ValueError, match=r"stratified cuts each class on its own, but the targ"):
        np.savez(imbalanced, inputs=np.zeros((50, 8, 2)), targets=np.linspace(0, 1, 50))
        npz_splits(
            str(imbalanced), SplitPlan(seed=0, fractions=(0.7, 0.15, 0.15), split="stratified")
        )


def test_a_users_csv_names_each_fold_sequence(tmp_path):
    """A CSV's sequences keep their names through a fold's split (`ids`): the out-of-fold
    predictions are named by them."""
    path = tmp_path / "d.csv"
    names = [f"run-{i:02d}" for i in range(50)][::-1]  # first-seen order: not sorted
    rows = [
        f"{name},{label},{i}" for i, (name, label) in enumerate(zip(names, LABELS, strict=True))
    ]
    path.write_text("sequence,target,a\n" + "\n".join(rows) + "\n")
    splits = csv_splits(str(path), SplitPlan(seed=3, fractions=(0.7, 0.15, 0.15), folds=5, fold=4))
    _, _, test = fold_indices(50, 5, 4, seed=3)
    assert splits["test"].ids.tolist() == [names[i] for i in test]
    assert splits["test"].targets.tolist() == LABELS[test].tolist()


GROUPS = np.random.default_rng(5).permutation(np.repeat(np.arange(12), np.arange(1, 13)))  # (78,)


def test_a_group_stays_whole_in_one_fold_and_in_one_split():
    """`groups`: a subject's (a machine's, a series') sequences are never both trained and
    tested on; folds balanced by size as scikit-learn's GroupKFold balances them."""
    n = len(GROUPS)
    tests = []
    for k in range(4):
        parts = fold_indices(n, 4, k, seed=0, groups=GROUPS)
        members = [set(GROUPS[p].tolist()) for p in parts]
        assert not (members[0] & members[1] or members[0] & members[2] or members[1] & members[2])
        tests.append(parts[2])
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(n))
    # greedy, largest group first: 12..5 fill the folds to 17 each, then 4, 3, 2, 1 follow
    assert [len(t) for t in tests] == [21, 20, 19, 18]
    parts = split_indices(n, (0.7, 0.15, 0.15), seed=0, groups=GROUPS)
    members = [set(GROUPS[p].tolist()) for p in parts]
    assert sum(len(m) for m in members) == 12 and set.union(*members) == set(range(12))
    assert abs(len(parts[0]) / n - 0.7) < 0.1, [len(p) for p in parts]
    with pytest.raises(ValueError, match=r"3 groups cannot be dealt into 4 folds"):
        fold_indices(6, 4, 0, groups=np.array([0, 0, 1, 1, 2, 2]))
    with pytest.raises(ValueError, match=r"6 examples in 2 groups by \(0.7, 0.15, 0.15\) leaves"):
        split_indices(6, (0.7, 0.15, 0.15), groups=np.array([0, 0, 0, 1, 1, 1]))


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        (np.arange(5), r"groups must be one per sequence, \(10,\); got \(5,\)"),
        (np.full(10, np.nan), r"groups contain NaN or Inf; name every sequence's group"),
    ],
)
def test_an_npz_names_groups_it_cannot_split_by(tmp_path, subject, message):
    path = tmp_path / "d.npz"
    np.savez(path, inputs=np.zeros((10, 3, 2)), targets=np.arange(10) % 2, subject=subject)
    with pytest.raises(ValueError, match=message):
        npz_splits(str(path), SplitPlan(seed=0, fractions=(0.7, 0.15, 0.15)), groups="subject")


def test_a_users_csv_keeps_its_groups_apart_and_out_of_the_channels(tmp_path):
    path = tmp_path / "d.csv"
    rows = [f"s{i},{i % 2},g{GROUPS[i]},{i},{-i}" for i in range(len(GROUPS)) for _ in range(2)]
    path.write_text("sequence,target,subject,a,b\n" + "\n".join(rows) + "\n")
    splits = csv_splits(str(path), SplitPlan(seed=0, fractions=(0.7, 0.15, 0.15)), groups="subject")
    assert splits["train"].scaler.names == ("a", "b")  # the group column is not a channel
    owner = {f"s{i}": GROUPS[i] for i in range(len(GROUPS))}
    held = [{owner[name] for name in splits[k].ids} for k in ("train", "val", "test")]
    assert not (held[0] & held[1] or held[0] & held[2] or held[1] & held[2])
    # new data in the same form: the group column is ignored, as training ignored it
    spec = DataSpec.of(splits["train"])
    data, names = read_prediction_inputs(str(path), spec, group_column="subject")
    assert data.inputs.shape == (len(GROUPS), 2, 2) and names == [f"s{i}" for i in range(78)]
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence,target,subject,a\ns0,0,g0,1\ns0,0,g1,2\ns1,1,g1,3\ns2,0,g2,4\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: subject of sequence 's0' changes over time"):
        csv_splits(str(bad), SplitPlan(seed=0, fractions=(0.7, 0.15, 0.15)), groups="subject")


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["data.folds=2"], r"data.folds must be 0 \(no cross-validation\) or 3 or more"),
        (["data.fold=1"], r"data.fold \(1\) picks a cross-validation fold; set data.folds"),
        (["data.folds=4", "data.fold=4"], r"data.fold must be one of the folds 0..3; got 4"),
        (["data.folds=4", "data.splits=[0.8, 0.1, 0.1]"], r"both size the splits"),
        (["data.source=steel", "data.folds=4"], r"generates as many sequences as data.size"),
        (["data.source=steel", "data.split=stratified"], r"splits an npz or CSV file of your own"),
        (["data.source=steel", "data.groups=subject"], r"data.source 'steel' has none"),
        (["data.groups=subject", "data.split=ordered"], r"data.split=ordered cuts by the file's"),
        (["data.groups=subject", "data.split=stratified"], r"data.split=stratified cuts by class"),
        (["data.groups=targets"], r"data.groups 'targets' names the data's own targets"),
        (["data.groups=w", "data.sample_weights=w"], r"data.groups 'w' names the sample weights"),
    ],
)
def test_the_config_names_what_cannot_be_cross_validated(imbalanced, sets, message):
    with pytest.raises(ValueError, match=message):
        load_config("configs/steel_lightweight.yaml", [f"data.source=npz:{imbalanced}", *sets])


SETS = [
    "data.split=stratified",
    "train.batch_size=4",
    "train.epochs=15",  # fold 1 is still training when it is stopped after its epoch 1
    "train.patience=0",
    "train.plots=false",
]


def test_an_interrupted_cross_validation_resumes_to_a_summary_of_every_fold(
    imbalanced, tmp_path, capsys
):
    run_dir = tmp_path / "cv"
    command = ["cv", "--config", "steel_lightweight", "--folds", "5", "--run-dir", str(run_dir)]
    command += ["--set", f"data.source=npz:{imbalanced}", *SETS]
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqjax.cli", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    first_epoch = run_dir / "fold_1" / "checkpoints" / "1"
    deadline = time.monotonic() + 300
    while not first_epoch.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGINT, stderr
    said = stderr.strip().splitlines()[-1]
    assert said.startswith("seqjax: stopped by SIGINT"), said
    resume = said.split("; continue with: ")[1]  # the cross-validation's command, not fold 1's
    assert shlex.split(resume) == ["seqjax", *command, "--resume"]
    assert sorted(os.listdir(run_dir)) == ["fold_0", "fold_1"]
    fold_0 = (run_dir / "fold_0" / "history.json").read_text()
    with pytest.raises(ValueError, match="a cross-validation that has not finished"):
        load_cv(str(run_dir))

    capsys.readouterr()
    assert main(command) == 2  # not without --resume: nothing is written
    assert "is not empty; pass --resume to continue the cross-validation" in capsys.readouterr().err
    assert sorted(os.listdir(run_dir)) == ["fold_0", "fold_1"]
    # resumed as printed, with the epochs cut short (a resume may change them), so that
    # folds 2-4 train 2 epochs each
    assert main([*shlex.split(resume)[1:-1], "train.epochs=2", "--resume"]) == 0

    assert (run_dir / "fold_0" / "history.json").read_text() == fold_0  # done: not retrained
    capsys.readouterr()
    other = [*shlex.split(resume)[1:-1], "optimizer.lr=0.5", "--resume"]
    assert main(other) == 2  # another config: named in the cross-validation's words
    said = capsys.readouterr().err
    assert f"trained {run_dir / 'fold_0'} with another optimizer.lr; resume it with" in said
    summary = json.loads((run_dir / "cv.json").read_text())
    tests = [
        json.loads((run_dir / f"fold_{k}" / "metrics.json").read_text())["test"] for k in range(5)
    ]
    assert summary["folds"] == 5 and summary["runs"] == [f"fold_{k}" for k in range(5)]
    for key in ("loss", "accuracy", "balanced_accuracy", "macro_f1"):
        folds = [test[key] for test in tests]
        assert summary["test"][key]["folds"] == folds
        assert summary["test"][key]["mean"] == pytest.approx(np.mean(folds), rel=1e-12)
        assert summary["test"][key]["std"] == pytest.approx(np.std(folds, ddof=1), rel=1e-12)
    confusion = np.array(summary["test"]["confusion_matrix"])  # each sequence scored once
    np.testing.assert_array_equal(confusion.sum(axis=1), np.bincount(LABELS))
    np.testing.assert_array_equal(confusion, sum(np.array(t["confusion_matrix"]) for t in tests))

    # out-of-fold predictions: every sequence once, by the fold that tested it
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["sequence", "fold", "target", "p_class_0", "p_class_1", "p_class_2"]
    sequence = np.array([int(row["sequence"]) for row in rows])
    np.testing.assert_array_equal(np.sort(sequence), np.arange(50))
    fold = np.array([int(row["fold"]) for row in rows])
    for k in range(5):
        _, _, test = fold_indices(50, 5, k, seed=0, labels=LABELS)  # data.seed 0
        np.testing.assert_array_equal(sequence[fold == k], test)
    target = np.array([int(row["target"]) for row in rows])
    np.testing.assert_array_equal(target, LABELS[sequence])
    probabilities = np.array([[float(row[f"p_class_{c}"]) for c in range(3)] for row in rows])
    for k in range(5):  # each fold's rows are its own model's: its test accuracy
        right = probabilities[fold == k].argmax(-1) == target[fold == k]
        assert right.mean() == pytest.approx(tests[k]["accuracy"], abs=1e-12)
    pooled = summary["pooled"]  # the metrics of every out-of-fold prediction together
    assert pooled == approx_tree(multiclass_classification(probabilities, target), abs=1e-12)
    assert pooled["confusion_matrix"] == summary["test"]["confusion_matrix"]
    assert sorted(os.listdir(run_dir)) == [
        "cv.json",
        *(f"fold_{k}" for k in range(5)),
        "predictions.csv",
    ]

    capsys.readouterr()
    assert main(["importance", str(run_dir)]) == 2  # its folds are the runs, and it says so
    said = capsys.readouterr().err
    assert "is a cross-validation, not a run directory: its folds are runs" in said
    assert main(["evaluate", str(run_dir)]) == 2  # a split: each fold has its own
    assert "give --input to score labelled data with its 5 models" in capsys.readouterr().err
    argv = ["evaluate", str(run_dir), "--input", str(imbalanced), "--threshold", "val-f1"]
    assert main(argv) == 2  # each fold has a validation split of its own
    assert "--threshold val-f1 takes a run's validation split" in capsys.readouterr().err
    argv = ["evaluate", str(run_dir), "--input", str(imbalanced), "--coverage", "0.9"]
    assert main(argv) == 2  # the folds' mean has no validation split of its own
    assert "--coverage fits on a run's validation split, and the folds' mean has none" in (
        capsys.readouterr().err
    )

    # seqjax predict on the whole cross-validation: the mean of its folds' models
    out = [str(tmp_path / f"{name}.csv") for name in ("ensemble", *(f"fold_{k}" for k in range(5)))]
    assert main(["predict", str(run_dir), "--input", str(imbalanced), "--output", out[0]]) == 0
    for k in range(5):
        fold = str(run_dir / f"fold_{k}")
        assert main(["predict", fold, "--input", str(imbalanced), "--output", out[k + 1]]) == 0
    argv = ["predict", str(run_dir), "--input", str(imbalanced), "--output"]
    assert main([*argv, str(run_dir / "predictions.csv")]) == 2  # the out-of-fold ones
    assert "would replace the run's predictions.csv" in capsys.readouterr().err
    ensemble, *folds = (np.loadtxt(path, delimiter=",", skiprows=1) for path in out)
    np.testing.assert_allclose(ensemble, np.mean(folds, axis=0), atol=1e-7)
    assert np.abs(ensemble - folds[0]).max() > 1e-3  # five models, not one

    # seqjax.load_cv in research code: the same mean, each fold scaling the raw inputs
    models = load_cv(str(run_dir))
    assert [member.epoch for member in models.members] == [
        json.loads((run_dir / f"fold_{k}" / "metrics.json").read_text())["best_epoch"]
        for k in range(5)
    ]
    assert repr(models).startswith("TrainedEnsemble(5 folds of 'steel', epochs [")
    with np.load(imbalanced) as raw:
        inputs = raw["inputs"]  # (50, 8, 2), every sequence whole
    lengths = np.full(len(inputs), inputs.shape[1])
    np.testing.assert_allclose(models(inputs, lengths), ensemble, atol=1e-6)
    np.testing.assert_allclose(models(inputs, lengths, batch_size=7), ensemble, atol=1e-6)

    # seqjax evaluate --input on the whole cross-validation: the metrics of that mean
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--input", str(imbalanced)]) == 0
    scored = json.loads(capsys.readouterr().out)
    # no loss: the mean is no model's output; the CSV's mean was rounded to float32
    said = {"checkpoint": "best", "models": 5, "input": str(imbalanced)}
    assert {key: scored.pop(key) for key in said} == said
    assert scored == approx_tree(multiclass_classification(ensemble, LABELS), abs=1e-7)

    # --calibrate: each fold's model recalibrated on its own validation split, then averaged
    assert main(["evaluate", str(run_dir), "--input", str(imbalanced), "--calibrate"]) == 0
    scored = json.loads(capsys.readouterr().out)
    recalibrated, heads = [], []
    for k in range(5):
        fold = str(run_dir / f"fold_{k}")
        cfg = load_run_config(fold)
        val = load_splits(cfg.data, cfg.train.loss)["val"]
        state, _ = restore_state(fold, cfg, val)
        heads.append(fit(cfg.train.loss, predict(cfg, state, val), val.targets))
        recalibrated.append(recalibrate(cfg.train.loss, folds[k].astype(np.float32), heads[-1]))
    assert scored["recalibration"] == {
        "fitted_on": "each fold's val",
        "folds": [[head.to_json() for head in fold] for fold in heads],
    }
    mean = np.mean(np.asarray(recalibrated, np.float64), axis=0)
    assert scored["ece"] == pytest.approx(multiclass_classification(mean, LABELS)["ece"], abs=1e-6)
    assert scored["accuracy"] == multiclass_classification(mean, LABELS)["accuracy"]
