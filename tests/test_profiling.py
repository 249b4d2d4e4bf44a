"""`train.profile_steps`: a jax.profiler trace of exactly the chosen steps, in the run
directory, readable without TensorBoard (its Perfetto JSON)."""

import glob
import gzip
import json

import pytest

from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.train import loop as loop_module

SETS = ["data.size=200", "model.hidden_sizes=[4, 4, 4]", "train.plots=false"]


def _trace_events(run_dir):
    (path,) = glob.glob(f"{run_dir}/profile/plugins/profile/*/perfetto_trace.json.gz")
    assert glob.glob(f"{run_dir}/profile/plugins/profile/*/*.xplane.pb")
    with gzip.open(path) as f:
        trace = json.load(f)
    return trace["traceEvents"] if isinstance(trace, dict) else trace


def test_the_chosen_steps_are_traced_and_no_others(tmp_path):
    """Steps 5-6 of a 2-epoch run of 5 steps an epoch: one step each side of an epoch's
    end, so the trace spans a validation pass and a checkpoint too."""
    sets = [*SETS, "train.epochs=2", "train.profile_steps=[5, 6]"]
    cfg = load_config("configs/trust.yaml", sets)
    logged = []
    loop_module.fit(cfg, load_splits(cfg.data), run_dir=str(tmp_path), log=logged.append)
    events = _trace_events(tmp_path)
    steps = sorted(int(e["args"]["step_num"]) for e in events if e.get("name") == "train")
    assert steps == [5, 6]
    names = {e.get("name", "") for e in events}
    assert any("train_step" in name for name in names), sorted(names)[:50]
    assert any(line.startswith("profile of steps 5-6: ") for line in logged)


def test_a_range_past_the_run_or_reversed_is_named_before_training():
    reversed_range = r"train.profile_steps must be \[first, last\] .* \[7, 3\]"
    with pytest.raises(ValueError, match=reversed_range):
        load_config("configs/trust.yaml", ["train.profile_steps=[7, 3]"])
    past = [*SETS, "train.epochs=2", "train.profile_steps=[11, 12]"]
    cfg = load_config("configs/trust.yaml", past)
    splits = load_splits(cfg.data)
    with pytest.raises(ValueError, match="starts at step 11, past the run's 10 steps"):
        loop_module.check_trainable(cfg, splits, loop_module.mesh_for(cfg))
