"""The benchmark suite runs in --quick mode and writes well-formed JSON (no time asserted)."""

import json
import math

import pytest

pytest.importorskip("torch")


def test_quick_suite_writes_every_figure(tmp_path, capsys):
    from benchmarks.__main__ import main

    out = tmp_path / "quick.json"
    main(["--quick", "--only", "trend", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["quick"] and result["command"].startswith("python -m benchmarks --quick")
    assert {"device", "jax", "flax", "torch"} <= set(result["environment"])
    trend = result["systems"]["trend"]
    assert trend["num_params"] == 231_560
    assert trend["train_step"]["repeats"] == 3 and trend["train_step"]["median_ms"] > 0
    assert set(trend["inference"]) == {"batch_1", "batch_32", "batch_256"}
    assert trend["memory"]["train_step_peak_bytes_compiled"] > 0
    assert 0 < trend["model_size_mb"] < 50
    assert [r["figure"] for r in trend["targets"]][1] == "inference ms / sequence (batch 1)"
    sbs = result["side_by_side"]["trend"]
    assert set(sbs["timings"]) == {"seqjax", "flax_nn_rnn", "torch_padded", "torch_packed"}
    assert all(math.isfinite(v) and v > 0 for v in sbs["speedup"].values())
    printed = capsys.readouterr().out
    assert "train_vs_flax_nn_rnn" in printed and "model size (MB)" in printed
