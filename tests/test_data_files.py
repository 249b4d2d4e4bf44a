"""A user's data file that is not what its name says (a directory, a missing path, CSV
text in an .npz, an .npz archive in a .csv, bytes that are not UTF-8) is named as such,
by the loaders of `data.source` and of `seqjax predict`/`evaluate --input` alike; and a
CSV saved with a byte-order mark reads as one without."""

import numpy as np
import pytest

from seqjax.data.external import csv_splits, npz_splits
from seqjax.data.raw_inputs import read_prediction_inputs
from seqjax.data.spec import DataSpec
from seqjax.data.splits import SplitPlan

SPLITS = (0.6, 0.2, 0.2)
CSV = "sequence,a,target\n" + "".join(f"s{i},{j}.5,{i % 2}\n" for i in range(10) for j in range(3))
SPEC = DataSpec(steps=3, features=1, target_shape=(), target_dtype="float32", scaler=None)
LOADERS = {
    "data.source": lambda path: (npz_splits if path.endswith(".npz") else csv_splits)(
        path, SplitPlan(seed=0, fractions=SPLITS)
    ),
    "--input": lambda path: read_prediction_inputs(path, SPEC),
}


def _write(path, content):
    """Puts `content` ("folder", "csv", "npz", "latin-1 csv" or "nothing") at `path`."""
    if content == "folder":
        path.mkdir()
    elif content == "csv":
        path.write_text(CSV)
    elif content == "latin-1 csv":  # s1's name with an e-acute, at byte 46
        path.write_bytes(CSV.replace("s1,", "s\xe91,").encode("latin-1"))
    elif content == "npz":
        with open(path, "wb") as f:
            np.savez(f, inputs=np.zeros((10, 3, 1)), targets=np.zeros(10))


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize(
    "name, content, error, message",
    [
        ("x.npz", "folder", ValueError, r"'.*x.npz' is a directory, not a .npz file"),
        ("x.csv", "folder", ValueError, r"'.*x.csv' is a directory, not a .csv file"),
        ("x.npz", "nothing", FileNotFoundError, r"no .npz file '.*x.npz'"),
        ("x.csv", "nothing", FileNotFoundError, r"no .csv file '.*x.csv'"),
        ("x.npz", "csv", ValueError, r"'.*x.npz' is not an .npz archive \(the zip of .npy"),
        ("x.csv", "npz", ValueError, r"'.*x.csv' is a zip archive \(an .npz\?\), not a CSV"),
        ("x.csv", "latin-1 csv", ValueError, r"'.*x.csv' is not UTF-8 text \(byte 46: invalid"),
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_named(
    tmp_path, loader, name, content, error, message
):
    _write(tmp_path / name, content)
    with pytest.raises(error, match=message):
        LOADERS[loader](str(tmp_path / name))


def test_an_npz_of_no_sequences_is_named(tmp_path):
    """Before, predict failed later with "iterate_batches: the dataset is empty"."""
    np.savez(tmp_path / "none.npz", inputs=np.zeros((0, 3, 1)))
    with pytest.raises(ValueError, match=r"none.npz' holds no sequences \(inputs of shape"):
        read_prediction_inputs(str(tmp_path / "none.npz"), SPEC)


def test_a_csv_with_a_byte_order_mark_reads_as_one_without(tmp_path):
    (tmp_path / "plain.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "excel.csv").write_text(CSV, encoding="utf-8-sig")  # Excel's "CSV UTF-8"
    plain = csv_splits(str(tmp_path / "plain.csv"), SplitPlan(seed=0, fractions=SPLITS))
    excel = csv_splits(str(tmp_path / "excel.csv"), SplitPlan(seed=0, fractions=SPLITS))
    for split in plain:
        np.testing.assert_array_equal(plain[split].inputs, excel[split].inputs)
    data, sequences = read_prediction_inputs(str(tmp_path / "excel.csv"), SPEC)
    assert sequences[:2] == ["s0", "s1"] and data.inputs.shape == (10, 3, 1)
