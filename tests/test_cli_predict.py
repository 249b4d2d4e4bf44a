"""`seqjax predict` beyond one probability per sequence: a multi-horizon run (trend, whose
targets are (N, 2, 2) and predictions (N, 2, 4)) predicts what `evaluate` scores, with a
named column per value; every task names its columns.

Before, predict built (N,) placeholder targets, and the eval step's loss failed on the
trend's and the hybrid's target shapes, so only the binary systems could predict."""

import json

import numpy as np
import pytest

from seqjax.cli import main
from seqjax.data.sources import load_splits
from seqjax.tasks import TASKS, get_task
from seqjax.train.restore import load_run_config
from tests.runs import TINY_TREND, train_run

# One xdist worker runs this file (`--dist loadgroup`), so its module fixtures, trained
# runs, are trained once, not once in each worker that draws one of its tests.
pytestmark = pytest.mark.xdist_group("cli_predict")

HORIZON = ["score", "p_down", "p_flat", "p_up"]  # a horizon's columns


@pytest.fixture(scope="module")
def trend_run(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("trend") / "run", "configs/trend.yaml", *TINY_TREND)


def test_a_trend_run_predicts_what_evaluate_scores_with_named_columns(trend_run, tmp_path, capsys):
    cfg = load_run_config(str(trend_run))
    test = load_splits(cfg.data)["test"]
    np.savez(tmp_path / "in.npz", inputs=test.inputs, lengths=test.lengths)
    for out in ("out.csv", "out.npz"):
        argv = ["predict", str(trend_run), "--input", str(tmp_path / "in.npz")]
        assert main([*argv, "--output", str(tmp_path / out)]) == 0
    header = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert header == [f"{h}_{v}" for h in ("d7", "d30") for v in HORIZON]
    rows = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)  # (N, 8)
    with np.load(tmp_path / "out.npz", allow_pickle=False) as f:
        preds, columns = f["predictions"], list(f["columns"])
    assert preds.shape == (len(test.inputs), 2, 4) and columns == header
    np.testing.assert_array_equal(rows, preds.reshape(len(preds), -1))
    np.testing.assert_allclose(preds[..., 1:].sum(-1), 1.0, rtol=1e-5)  # per horizon

    capsys.readouterr()
    assert main(["evaluate", str(trend_run), "--split", "test"]) == 0
    scored = json.loads(capsys.readouterr().out)
    ours = get_task(cfg.train.loss).evaluate(preds, test.targets)
    for key in ("d7_rmse", "d30_rmse", "d7_class_accuracy", "d30_direction_accuracy"):
        assert ours[key] == pytest.approx(scored[key], rel=1e-6), key


def test_sequences_longer_than_training_get_a_note_and_their_predictions(
    trend_run, tmp_path, capsys
):
    """An LSTM takes any length, so 20 weeks given to a run of 12-week windows are scored;
    before, without a word that the model never saw such lengths."""
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(3, 20, 62)).astype(np.float32)
    np.savez(tmp_path / "long.npz", inputs=inputs, lengths=np.array([20, 5, 13]))
    np.savez(tmp_path / "short.npz", inputs=inputs[:, :12], lengths=np.array([12, 5, 9]))
    for name in ("long", "short"):
        capsys.readouterr()
        argv = ["predict", str(trend_run), "--input", str(tmp_path / f"{name}.npz")]
        assert main([*argv, "--output", str(tmp_path / f"{name}.csv")]) == 0
        err = capsys.readouterr().err
        if name == "long":
            assert err == (
                f"seqjax: note: 2 of 3 sequences in '{tmp_path / 'long.npz'}' are longer than "
                "the run trained on (12 steps; the longest here has 20); its predictions "
                "there come from states training never reached\n"
            )
        else:
            assert err == ""
    assert len((tmp_path / "long.csv").read_text().splitlines()) == 4


def test_a_threshold_is_refused_for_a_run_that_is_not_two_class(trend_run, capsys):
    for threshold in ("0.3", "val-f1"):
        capsys.readouterr()
        assert main(["evaluate", str(trend_run), "--threshold", threshold]) == 2
        assert capsys.readouterr().err == (
            "seqjax: error: --threshold applies to a two-class run (loss binary_cross_entropy);"
            " this run's loss is 'trend_multitask'\n"
        )
    from seqjax.train.restore import evaluate_run  # the same refusal in Python

    with pytest.raises(ValueError, match="--threshold applies to a two-class run"):
        evaluate_run(load_run_config(str(trend_run)), None, None, threshold=0.3)


def test_predict_refuses_an_output_that_would_replace_its_inputs_or_the_runs_history(
    trend_run, tmp_path, capsys
):
    cfg = load_run_config(str(trend_run))
    test = load_splits(cfg.data)["test"]
    np.savez(tmp_path / "in.npz", inputs=test.inputs, lengths=test.lengths)
    kept = {p: p.read_bytes() for p in (tmp_path / "in.npz", trend_run / "history.csv")}
    argv = ["predict", str(trend_run), "--input", str(tmp_path / "in.npz"), "--output"]
    assert main([*argv, str(tmp_path / "." / "in.npz")]) == 2
    assert "is the --input file; writing it would replace the inputs" in capsys.readouterr().err
    assert main([*argv, str(trend_run / "history.csv")]) == 2
    assert "would replace the run's history.csv" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in kept} == kept
    for _ in range(2):  # a file of its own, in the run directory too, it may write again
        assert main([*argv, str(trend_run / "predictions.csv")]) == 0


@pytest.mark.parametrize(
    "loss,shape,expected",
    [
        ("binary_cross_entropy", (), ["probability"]),
        ("cross_entropy", (3,), ["p_class_0", "p_class_1", "p_class_2"]),
        ("mse", (3,), ["y0", "y1", "y2"]),
        ("mse", (), ["y"]),
        ("trend_volatility_aware", (2, 4), get_task("trend_multitask").columns((2, 4))),
        ("trend_multitask", (3, 4), [f"h{k}_{v}" for k in range(3) for v in HORIZON]),
    ],
)
def test_every_task_names_one_column_per_value(loss, shape, expected):
    assert TASKS[loss].columns(shape) == expected


def _raw_csv(path, n=60, seed=0):
    """Users' raw units: a temperature near 1,500 C and a pressure near 0.002, in that
    column order, lengths 5-11; the label shifts the temperature."""
    rng = np.random.default_rng(seed)
    rows = ["sequence,temp_c,pressure,target"]
    for s in range(n):
        label, length = s % 2, int(rng.integers(5, 12))
        temp = 1500 + 20 * rng.standard_normal(length) + 15 * label
        pressure = 0.002 + 1e-4 * rng.standard_normal(length)
        rows += [
            f"run-{s},{t},{p},{label}"
            for t, p in zip(temp.tolist(), pressure.tolist(), strict=True)
        ]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("csv")
    data = _raw_csv(root / "train.csv")
    sets = [f"data.source=csv:{data}", "train.epochs=1", "train.batch_size=8", "train.plots=false"]
    return train_run(root / "run", "configs/steel_lightweight.yaml", *sets), data


def test_raw_users_data_is_scaled_as_training_scaled_it_csv_columns_matched_by_name(
    csv_run, tmp_path
):
    """Raw rows of the run's own CSV, its columns reordered, predict what the run's scaled
    test split predicts; so does an .npz of the raw values, and the scaled split itself
    with --inputs-scaled. Unscaled, 1,500 C reads as ~1,500 standard deviations."""
    from seqjax.data.external import read_long_csv
    from seqjax.data.splits import split_indices
    from seqjax.train.restore import predict, restore_state

    run_dir, data = csv_run
    cfg = load_run_config(str(run_dir))
    splits = load_splits(cfg.data)
    state, _ = restore_state(str(run_dir), cfg, splits["train"])
    expected = predict(cfg, state, splits["test"])  # (N_test,) probabilities

    lines = data.read_text().splitlines()  # columns reordered: pressure first, no target
    swapped = [",".join([c[0], c[2], c[1]]) for c in (line.split(",") for line in lines)]
    (tmp_path / "new.csv").write_text("\n".join(swapped) + "\n")
    read = read_long_csv(str(data))
    names, raw, lengths = read.sequences, read.inputs, read.lengths
    test = split_indices(len(names), tuple(cfg.data.splits), seed=cfg.data.seed)[2]
    np.savez(tmp_path / "raw.npz", inputs=raw, lengths=lengths)
    np.savez(tmp_path / "scaled.npz", inputs=splits["test"].inputs, lengths=splits["test"].lengths)

    def run(source, out, *extra):
        argv = ["predict", str(run_dir), "--input", str(tmp_path / source)]
        assert main([*argv, "--output", str(tmp_path / out), *extra]) == 0
        with np.load(tmp_path / out, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    data.rename(data.with_suffix(".away"))  # the run directory alone is enough to predict
    try:
        from_csv = run("new.csv", "a.npz")
        raw_npz = run("raw.npz", "b.npz")["predictions"]
        scaled = run("scaled.npz", "c.npz", "--inputs-scaled")["predictions"]
        unscaled = run("raw.npz", "d.npz", "--inputs-scaled")["predictions"][test]
    finally:
        data.with_suffix(".away").rename(data)
    assert list(from_csv["sequence"]) == names
    np.testing.assert_allclose(from_csv["predictions"][test], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(raw_npz[test], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scaled, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(unscaled - expected).max() > 0.05, "the scaling must matter here"
    # A run written before data_spec.json: its training split, loaded again, gives the spec.
    (run_dir / "data_spec.json").rename(tmp_path / "spec.json")
    try:
        again = run("new.csv", "f.npz")["predictions"]
    finally:
        (tmp_path / "spec.json").rename(run_dir / "data_spec.json")
    np.testing.assert_array_equal(again, from_csv["predictions"])

    assert (
        main(
            [
                *["predict", str(run_dir), "--input", str(tmp_path / "new.csv")],
                "--output",
                str(tmp_path / "e.csv"),
            ]
        )
        == 0
    )
    header, first = (tmp_path / "e.csv").read_text().splitlines()[:2]
    assert header == "sequence,probability" and first.startswith("run-0,")


def test_a_csv_whose_channels_differ_from_training_is_named(csv_run, tmp_path, capsys):
    run_dir, _ = csv_run
    (tmp_path / "new.csv").write_text("sequence,temp_c,flow\nx,1500,3\n")
    argv = ["predict", str(run_dir), "--input", str(tmp_path / "new.csv")]
    assert main([*argv, "--output", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert "channel columns differ" in err and "missing ['pressure'], unexpected ['flow']" in err
    assert not (tmp_path / "out.csv").exists()


def test_evaluate_scores_new_raw_labelled_data_as_its_own_test_split(csv_run, tmp_path, capsys):
    """The test split's raw rows, as a CSV of their own, score what `--split test` scores."""
    from seqjax.data.external import read_long_csv
    from seqjax.data.splits import split_indices

    run_dir, data = csv_run
    cfg = load_run_config(str(run_dir))
    names = read_long_csv(str(data)).sequences
    parts = split_indices(len(names), tuple(cfg.data.splits), seed=cfg.data.seed)
    test = {names[i] for i in parts[2]}
    header, *rows = data.read_text().splitlines()
    (tmp_path / "new.csv").write_text(
        "\n".join([header, *(r for r in rows if r.split(",")[0] in test)]) + "\n"
    )
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--input", str(tmp_path / "new.csv")]) == 0
    ours = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(run_dir), "--split", "test"]) == 0
    split = json.loads(capsys.readouterr().out)
    assert ours["input"] == str(tmp_path / "new.csv") and split["split"] == "test"
    for key in ("loss", "accuracy", "auc_roc", "auc_pr"):
        assert ours[key] == pytest.approx(split[key], rel=1e-6), key

    (tmp_path / "bad.csv").write_text(header + "\n" + rows[0].rsplit(",", 1)[0] + ",2\n")
    assert main(["evaluate", str(run_dir), "--input", str(tmp_path / "bad.csv")]) == 2
    assert "a two-class run takes targets 0 and 1" in capsys.readouterr().err


def test_text_labels_are_classes_named_in_predictions_and_new_labels(tmp_path, capsys):
    """A CSV whose targets are words trains a classifier over them (sorted: crack, ok,
    scratch); predictions are named p_<class> and `evaluate --input` reads the words."""
    rng = np.random.default_rng(1)
    words = ["ok", "crack", "scratch"]
    rows = ["sequence,a,b,target"]
    for s in range(45):
        label, n = words[s % 3], int(rng.integers(3, 7))
        a, b = rng.standard_normal(n) + s % 3, rng.standard_normal(n)
        rows += [f"s{s},{x},{y},{label}" for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    data = tmp_path / "words.csv"
    data.write_text("\n".join(rows) + "\n")
    run_dir = tmp_path / "run"
    argv = ["train", "--config", "configs/steel_lightweight.yaml", "--run-dir", str(run_dir)]
    sets = [f"data.source=csv:{data}", "train.epochs=1", "train.batch_size=8", "train.plots=false"]
    assert main([*argv, "--set", *sets]) == 0
    assert json.loads((run_dir / "data_spec.json").read_text())["classes"] == sorted(words)

    out = tmp_path / "p.csv"
    assert main(["predict", str(run_dir), "--input", str(data), "--output", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "sequence,p_crack,p_ok,p_scratch"
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--input", str(data)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["classes"] == ["crack", "ok", "scratch"]
    assert sum(map(sum, scored["confusion_matrix"])) == 45
    assert json.loads((run_dir / "metrics.json").read_text())["classes"] == scored["classes"]
    data.write_text(data.read_text().replace(",scratch\n", ",dent\n"))
    assert main(["evaluate", str(run_dir), "--input", str(data)]) == 2
    assert "labels ['dent'] are not among the run's classes" in capsys.readouterr().err


def test_importance_ranks_the_channels_by_the_loss_their_ablation_adds(csv_run, tmp_path, capsys):
    """`seqjax importance`: the run's loss on the split is `evaluate`'s; each channel's
    figure is the loss with that channel at its mean over the valid steps, less that loss,
    computed here again by hand; the names are the CSV's columns, in the printed line and
    in the --output CSV, most important first."""
    import dataclasses

    from seqjax.data.spec import load_data_spec
    from seqjax.layers.masking import length_mask
    from seqjax.train.restore import evaluate_run, restore_state

    run_dir, _ = csv_run
    out = tmp_path / "importance.csv"
    assert main(["importance", str(run_dir), "--split", "val", "--output", str(out)]) == 0
    line = json.loads(capsys.readouterr().out)
    cfg = load_run_config(str(run_dir))
    val = load_splits(cfg.data)["val"]
    state, _ = restore_state(str(run_dir), cfg, load_data_spec(str(run_dir)).sample())
    base = evaluate_run(cfg, state, val)["loss"]
    assert line["split"] == "val" and line["loss"] == pytest.approx(base, rel=1e-6)
    assert set(line["importance"]) == {"temp_c", "pressure"}
    valid = np.asarray(length_mask(val.lengths, val.inputs.shape[1]))
    for channel, name in enumerate(["temp_c", "pressure"]):
        ablated = val.inputs.copy()
        ablated[..., channel] = np.where(valid, val.inputs[..., channel][valid].mean(), 0.0)
        loss = evaluate_run(cfg, state, dataclasses.replace(val, inputs=ablated))["loss"]
        assert line["importance"][name] == pytest.approx(loss - base, rel=1e-5, abs=1e-7)
    rows = [r.split(",") for r in out.read_text().splitlines()]
    assert rows[0] == ["channel", "importance"]
    assert [r[0] for r in rows[1:]] == list(line["importance"])  # descending, as printed
    assert float(rows[1][1]) >= float(rows[2][1])
    assert main(["importance", str(run_dir), "--top", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)["importance"]) == 1


def test_a_trend_runs_coverage_names_each_horizon_and_says_its_splits_follow_time(
    trend_run, capsys
):
    capsys.readouterr()
    assert main(["evaluate", str(trend_run), "--coverage", "0.8"]) == 0
    out, err = capsys.readouterr()
    assert "this run's splits follow time, so later data may be covered less often" in err
    scored = json.loads(out)["conformal"]
    for h in ("d7", "d30"):
        assert {f"{h}_direction_covered", f"{h}_direction_mean_set_size"} <= set(scored)
        assert scored[f"{h}_score_width"] > 0


def test_batch_size_changes_the_passes_not_the_scores(trend_run, tmp_path, capsys, monkeypatch):
    """`--batch-size` (evaluate, predict, importance): rows a pass of the model. A row's
    prediction does not depend on the rows beside it, so another size gives the same
    figures to float rounding; a size that cannot be is named before anything runs."""
    import seqjax.train.restore as restore

    sizes = []  # the batch size of each pass over data

    def recording(eval_step, state, data, task, batch_size, mesh, **kw):
        sizes.append(batch_size)
        return real(eval_step, state, data, task, batch_size, mesh, **kw)

    real = restore.predict_split
    monkeypatch.setattr(restore, "predict_split", recording)
    cfg = load_run_config(str(trend_run))
    test = load_splits(cfg.data)["test"]
    assert cfg.train.batch_size != 7 and len(test) % 7  # other batches, a short last one
    np.savez(tmp_path / "in.npz", inputs=test.inputs, lengths=test.lengths)
    predicted = []
    for size in ([], ["--batch-size", "7"]):
        out = tmp_path / f"out{len(size)}.npz"
        argv = ["predict", str(trend_run), "--input", str(tmp_path / "in.npz"), "--output"]
        assert main([*argv, str(out), *size]) == 0
        with np.load(out) as f:
            predicted.append(f["predictions"])
    assert sizes == [cfg.train.batch_size, 7]
    np.testing.assert_allclose(predicted[1], predicted[0], rtol=1e-6, atol=1e-7)
    for command in (["evaluate"], ["importance"]):
        capsys.readouterr()
        assert main([*command, str(trend_run)]) == 0
        alone = json.loads(capsys.readouterr().out)
        sizes.clear()
        assert main([*command, str(trend_run), "--batch-size", "7"]) == 0
        sized = json.loads(capsys.readouterr().out)
        assert set(sizes) == {7}, sizes  # importance: a pass per channel and one whole
        assert sized.keys() == alone.keys()
        for key, value in alone.items():
            if isinstance(value, float):
                assert sized[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
        if command == ["importance"]:
            assert sized["importance"] == pytest.approx(alone["importance"], rel=1e-4, abs=1e-6)
    for bad in ("0", "-3"):
        assert main(["evaluate", str(trend_run), "--batch-size", bad]) == 2
        assert f"--batch-size must be an integer >= 1; got {bad}" in capsys.readouterr().err
