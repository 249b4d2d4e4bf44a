"""Small runs trained by `seqjax train` for the tests that read a run directory back
(evaluate, predict, load_run), so each file does not spell out the command again."""

from pathlib import Path

from seqjax.cli import main

# a trend run in about a second: 10 generated weeks, one epoch, hidden and head of 8
TINY_TREND = ["data.size=10", "train.epochs=1", "model.hidden_size=8", "model.head_dim=8"]


def train_run(run_dir: Path, config: str, *sets: str) -> Path:
    """`seqjax train --config CONFIG --run-dir RUN_DIR --set SETS...`, which must succeed."""
    argv = ["train", "--config", config, "--run-dir", str(run_dir)]
    assert main([*argv, "--set", *sets] if sets else argv) == 0
    return run_dir
