"""`DataSpec` (data_spec.json) and reading new inputs against it, without a model."""

import numpy as np
import pytest

from seqjax.data.dataset import SequenceDataset
from seqjax.data.raw_inputs import read_prediction_inputs
from seqjax.data.spec import DataSpec, load_data_spec, save_data_spec
from seqjax.data.splits import StandardScaler

SCALER = StandardScaler(np.array([1500.0, 0.002]), np.array([20.0, 1e-4]), ("temp", "p"))


def _train():
    inputs = np.ones((4, 6, 2), np.float32)
    return SequenceDataset(inputs, np.full(4, 6, np.int32), np.zeros((4, 2, 2)), SCALER)


def test_the_spec_round_trips_through_its_file_and_builds_a_sample(tmp_path):
    save_data_spec(str(tmp_path), _train())
    spec = load_data_spec(str(tmp_path))
    assert spec is not None
    assert (spec.steps, spec.features, spec.target_shape, spec.target_dtype) == (
        6,
        2,
        (2, 2),
        "float64",
    )
    assert spec.scaler is not None and spec.scaler.names == ("temp", "p")
    np.testing.assert_array_equal(spec.scaler.mean, SCALER.mean)
    sample = spec.sample()
    assert sample.inputs.shape == (1, 6, 2) and sample.targets.shape == (1, 2, 2)
    assert load_data_spec(str(tmp_path / "nowhere")) is None


def test_a_damaged_spec_is_named(tmp_path):
    (tmp_path / "data_spec.json").write_text('{"steps": 3}')
    with pytest.raises(ValueError, match=r"data_spec.json is damaged \(KeyError: 'features'\)"):
        load_data_spec(str(tmp_path))


def test_raw_npz_inputs_are_scaled_and_bad_ones_named_with_the_file(tmp_path):
    spec = DataSpec.of(_train())
    raw = np.stack([np.full((3, 6), 1520.0), np.full((3, 6), 0.0021)], -1)  # (3, 6, 2)
    np.savez(tmp_path / "a.npz", inputs=raw, lengths=np.array([6, 2, 4]))
    data, names = read_prediction_inputs(str(tmp_path / "a.npz"), spec)
    assert names is None and data.targets.shape == (3, 2, 2)
    np.testing.assert_allclose(data.inputs[0, 0], [1.0, 1.0], rtol=1e-5)
    assert not data.inputs[1, 2:].any()  # zero past each length, as padding is
    raw[1, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", inputs=raw)
    with pytest.raises(ValueError, match="'.*nan.npz': inputs contain NaN or Inf"):
        read_prediction_inputs(str(tmp_path / "nan.npz"), spec)


def test_labelled_inputs_take_the_runs_target_form_or_are_named(tmp_path):
    from types import SimpleNamespace

    from seqjax.data.sources import check_class_targets

    x = np.zeros((3, 6, 2))
    classes = SequenceDataset(np.ones((4, 6, 2), np.float32), np.full(4, 6), np.arange(4) % 3)
    spec = DataSpec.of(classes)  # (N,) int class indices
    np.savez(tmp_path / "a.npz", inputs=x, targets=np.array([0.0, 2.0, 1.0]))
    data, _ = read_prediction_inputs(str(tmp_path / "a.npz"), spec, labelled=True)
    assert data.targets.dtype == spec.target_dtype and list(data.targets) == [0, 2, 1]
    np.savez(tmp_path / "b.npz", inputs=x, targets=np.array([0.5, 2.0, 1.0]))
    with pytest.raises(ValueError, match="targets must be class indices 0..K-1"):
        read_prediction_inputs(str(tmp_path / "b.npz"), spec, labelled=True)
    np.savez(tmp_path / "c.npz", inputs=x, targets=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"targets of shape \(2,\) per sequence; the run's are"):
        read_prediction_inputs(str(tmp_path / "c.npz"), spec, labelled=True)
    np.savez(tmp_path / "d.npz", inputs=x)
    with pytest.raises(ValueError, match=r"has no \['targets'\] array"):
        read_prediction_inputs(str(tmp_path / "d.npz"), spec, labelled=True)
    cfg = SimpleNamespace(
        train=SimpleNamespace(loss="cross_entropy"), model=SimpleNamespace(num_classes=3)
    )
    with pytest.raises(ValueError, match="class 3 is past the run's 3 classes 0..2"):
        check_class_targets(cfg, np.array([0, 3]), "e.npz")
