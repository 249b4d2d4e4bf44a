"""`data.split: ordered` and `data.gap`: a user's npz or CSV split in its own order (the
first fraction trains, then validation, then test), with `gap` sequences left out after
each cut, so that time-ordered windows train on the past and are tested on the future."""

import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.data.external import csv_splits, npz_splits
from seqjax.data.splits import split_indices

SPLITS = (0.6, 0.2, 0.2)
N, T = 30, 3


def test_ordered_parts_are_consecutive_and_the_gap_is_left_out_after_each_cut():
    train, val, test = split_indices(N, SPLITS, ordered=True)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), np.arange(N))
    assert (len(train), len(val), len(test)) == (18, 6, 6)
    train, val, test = split_indices(N, SPLITS, ordered=True, gap=2)
    np.testing.assert_array_equal(train, np.arange(18))
    np.testing.assert_array_equal(val, np.arange(20, 24))  # 18 and 19 left out
    np.testing.assert_array_equal(test, np.arange(26, 30))  # 24 and 25 left out
    shuffled = split_indices(N, SPLITS, seed=0)
    assert not np.array_equal(np.concatenate(shuffled), np.arange(N))  # as before: random
    with pytest.raises(ValueError, match=r"with a gap of 6 after each cut leaves an empty part"):
        split_indices(N, SPLITS, ordered=True, gap=6)


def _ids(part):
    """The sequence numbers a split holds, from its first channel (sequence i: value i)."""
    return np.rint(part.scaler.mean[0] + part.inputs[:, 0, 0] * part.scaler.std[0]).astype(int)


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_a_users_file_splits_in_its_order(tmp_path, kind):
    """The npz's array order; the CSV's first-seen order of its sequences (here the
    reverse of their names' order, so neither sorting nor shuffling could pass)."""
    order = np.arange(N)[::-1] if kind == "csv" else np.arange(N)
    if kind == "npz":
        path = tmp_path / "d.npz"
        inputs = np.repeat(np.arange(N, dtype=np.float32)[:, None, None], T, axis=1)
        np.savez(path, inputs=inputs, targets=np.arange(N) % 2)
        load = npz_splits
    else:
        path = tmp_path / "d.csv"
        rows = [f"s{i:02d},{i % 2},{i}" for i in order for _ in range(T)]
        path.write_text("sequence,target,a\n" + "\n".join(rows) + "\n")
        load = csv_splits
    splits = load(str(path), seed=0, fractions=SPLITS, split="ordered", gap=1)
    np.testing.assert_array_equal(_ids(splits["train"]), order[:18])
    np.testing.assert_array_equal(_ids(splits["val"]), order[19:24])
    np.testing.assert_array_equal(_ids(splits["test"]), order[25:])


def test_the_config_names_what_cannot_be_ordered(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, inputs=np.zeros((10, 2, 1)), targets=np.arange(10) % 2)
    with pytest.raises(ValueError, match=r"data.gap \(4\) leaves out sequences at the cuts of an"):
        load_config("configs/steel_lightweight.yaml", [f"data.source=npz:{path}", "data.gap=4"])
    with pytest.raises(ValueError, match=r"data.source 'steel' splits itself"):
        load_config("configs/steel_lightweight.yaml", ["data.split=ordered"])
    with pytest.raises(ValueError, match=r"data.split must be one of \('random', 'ordered'\)"):
        load_config("configs/steel_lightweight.yaml", ["data.split=time"])
    with pytest.raises(ValueError, match=r"data.gap must be >= 0; got -1"):
        load_config("configs/steel_lightweight.yaml", ["data.gap=-1"])
    with pytest.raises(ValueError, match=r"d.npz: a split of 10 examples .* with a gap of 2"):
        npz_splits(str(path), seed=0, fractions=SPLITS, split="ordered", gap=2)
