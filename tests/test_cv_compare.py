"""`seqjax compare`: two cross-validations of the same folds, paired fold by fold."""

import json

import pytest

from seqjax.cli import main
from seqjax.config import dump_config, load_config
from seqjax.train.cv_compare import compare_cross_validations


def _cross_validation(path, folds: dict, sets=()):
    """A finished cross-validation's record as `seqjax cv` writes it: cv.json with the
    folds' test figures, and fold_0's config.yaml, which names its data and folds."""
    (path / "fold_0").mkdir(parents=True)
    cfg = load_config("steel_lightweight", ["data.source=npz:d.npz", "data.folds=3", *sets])
    (path / "fold_0" / "config.yaml").write_text(dump_config(cfg))
    test = {key: {"mean": sum(v) / 3, "std": 0.0, "folds": v} for key, v in folds.items()}
    test["confusion_matrix"] = [[1, 0], [0, 1]]
    (path / "cv.json").write_text(json.dumps({"folds": 3, "test": test}))
    return str(path)


def test_the_second_is_compared_fold_by_fold_in_each_metrics_direction(tmp_path, capsys):
    first = _cross_validation(tmp_path / "a", {"loss": [0.5, 0.4, 0.6], "f1": [0.5, 0.7, 0.6]})
    second = _cross_validation(
        tmp_path / "b", {"loss": [0.4, 0.5, 0.5], "f1": [0.6, 0.8, 0.55], "auc_roc": [1, 1, 1]}
    )
    compared = compare_cross_validations(first, second)["test"]
    assert set(compared) == {"loss", "f1"}  # not the confusion matrix, nor a metric of one
    assert compared["loss"]["difference"]["folds"] == pytest.approx([-0.1, 0.1, -0.1])
    assert compared["loss"]["second_better_in"] == 2  # lower is better
    assert compared["f1"]["difference"]["mean"] == pytest.approx(0.05)
    assert compared["f1"]["difference"]["std"] == pytest.approx(0.0866025, abs=1e-6)
    assert compared["f1"]["second_better_in"] == 2  # higher is better
    assert main(["compare", first, second]) == 0
    assert "f1" in capsys.readouterr().out.splitlines()[3]


def test_cross_validations_of_other_folds_are_refused(tmp_path, capsys):
    first = _cross_validation(tmp_path / "a", {"f1": [0.5, 0.7, 0.6]})
    other = _cross_validation(tmp_path / "b", {"f1": [0.5, 0.7, 0.6]}, ["data.seed=1"])
    with pytest.raises(ValueError, match=r"not cross-validations of the same folds: data.seed"):
        compare_cross_validations(first, other)
    assert main(["compare", first, str(tmp_path)]) == 2  # no cv.json: not finished
    assert "holds no finished cross-validation (cv.json)" in capsys.readouterr().err
