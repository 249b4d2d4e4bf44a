"""The benchmark suite runs in --quick mode and writes well-formed JSON (no time asserted)."""

import json
import math
import os

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
    compiled = trend["memory"]["train_step_compiled"]  # XLA's buffers for one train step
    parts = compiled["argument_bytes"] + compiled["output_bytes"] + compiled["temp_bytes"]
    assert compiled["total_bytes"] == parts - compiled["alias_bytes"]
    assert compiled["temp_bytes"] > 0
    assert compiled["argument_bytes"] >= 3 * 4 * trend["num_params"]  # params + Adam's moments
    assert 0 < trend["model_size_mb"] < 50
    # the systems run as `seqjax train` runs them: freed host memory kept where asked for
    from seqjax import host_memory

    asked = os.environ.get(host_memory.ENV) == "1" and host_memory._glibc() is not None
    assert trend["host_memory_reused"] == asked
    assert [r["figure"] for r in trend["targets"]][1] == "inference ms / sequence (batch 1)"
    sbs = result["side_by_side"]["trend"]
    cores = os.cpu_count() or 1
    assert sbs["devices"] == cores  # the side-by-side's process sees one device per core
    per_core = set()
    if cores > 1 and 32 % cores == 0:  # seqjax and Flax, each on a mesh of the devices
        per_core = {"seqjax_per_core", "flax_nn_rnn_per_core"}
    one_thread = {"torch_padded_1thread"} if cores > 1 else set()
    impls = {"seqjax", "flax_nn_rnn", "torch_padded", "torch_packed"} | per_core | one_thread
    assert set(sbs["timings"]) == impls
    assert all(math.isfinite(v) and v > 0 for v in sbs["speedup"].values())
    if per_core:
        assert set(sbs["speedup_per_core"]) == {
            f"{kind}_vs_{ref}"
            for kind in ("train", "inference_b32")
            for ref in ("torch_padded", "torch_packed", "flax_nn_rnn_per_core")
        }
        assert all(math.isfinite(v) and v > 0 for v in sbs["speedup_per_core"].values())
    if one_thread:
        assert set(sbs["speedup_same_threads"]) == {
            "train_vs_torch_padded_1thread",
            "inference_b32_vs_torch_padded_1thread",
        }
    printed = capsys.readouterr().out
    assert "train_vs_flax_nn_rnn" in printed and "model size (MB)" in printed


def test_side_by_side_alone_writes_its_ratios(tmp_path, monkeypatch, capsys):
    """The command's own part: its arguments reach the measurement, and its JSON and table
    hold what came back. The measurement itself, `measure_isolated`, is the one the suite
    runs: test_quick_suite_writes_every_figure times trend's side by side for real."""
    import benchmarks.side_by_side as sbs

    asked = []

    def measure(name, *, repeats, variants):
        asked.append((name, repeats, variants))
        return {"config": {"name": name}, "speedup": {"train_vs_torch_padded": 1.25}}

    monkeypatch.setattr(sbs, "measure_isolated", measure)
    out = tmp_path / "sbs.json"
    result = sbs.main(["--only", "trend", "--repeats", "3", "--out", str(out)])
    assert asked == [("trend", 3, None)]  # every optional variant that applies
    assert json.loads(out.read_text()) == result
    assert (
        result["command"]
        == f"python -m benchmarks.side_by_side --only trend --repeats 3 --out {out}"
    )
    sbs.main(
        ["--only", "steel", "--variant", "two_scans", "--variant", "graphs", "--out", str(out)]
    )
    assert asked[-1] == ("steel", 15, ("two_scans", "graphs"))
    assert list(result["side_by_side"]) == ["trend"] and result["systems"] == {}
    assert {"device", "jax", "torch"} <= set(result["environment"])
    printed = capsys.readouterr().out
    assert "train_vs_torch_padded" in printed and "1.25" in printed


def test_side_by_side_keeps_the_configs_done_when_a_later_one_fails(tmp_path, monkeypatch):
    """A GPU session's one call can be cut off mid-run: each config's figures are on disk
    as soon as that config is done, not only at the end."""
    import benchmarks.side_by_side as sbs

    def measure(name, *, repeats, variants):
        if name == "steel":
            raise RuntimeError("cut off")
        return {"config": {"name": name}}

    monkeypatch.setattr(sbs, "measure_isolated", measure)
    out = tmp_path / "sbs.json"
    with pytest.raises(RuntimeError, match="cut off"):
        sbs.main(["--only", "trend", "--only", "steel", "--out", str(out)])
    assert json.loads(out.read_text())["side_by_side"] == {"trend": {"config": {"name": "trend"}}}


def test_loop_graph_options_are_ones_xla_accepts_and_change_no_result():
    """XLA checks option names and values when it compiles on any backend, so a typo in
    LOOP_GRAPHS fails here rather than in a GPU session's budget."""
    import jax
    import numpy as np

    from benchmarks.side_by_side import CONFIGS, SeqjaxStack, gpu_variants, inputs
    from seqjax.loop_graphs import LOOP_GRAPHS

    cfg = CONFIGS["trend"]
    x, lengths = inputs(cfg)
    module = SeqjaxStack(cfg["hidden"], cfg["layers"], cfg["bi"])
    variables = jax.jit(module.init)(jax.random.key(0), x, lengths)
    plain = jax.jit(module.apply)(variables, x, lengths)
    graphs = jax.jit(module.apply, compiler_options=LOOP_GRAPHS)(variables, x, lengths)
    np.testing.assert_array_equal(np.asarray(graphs), np.asarray(plain))
    assert set(gpu_variants(CONFIGS["trust"])) == {"seqjax_graphs"}  # no directions to fuse
    assert gpu_variants(cfg)["seqjax_two_scans"] == ({"fused": False}, None)
    bad = {**LOOP_GRAPHS, "xla_gpu_enable_command_buffer": "WHILE,LOOPS"}
    with pytest.raises(Exception, match="not a valid enum value"):
        jax.jit(module.apply, compiler_options=bad)(variables, x, lengths)


def test_every_optional_variant_has_a_name_the_variant_option_takes():
    from benchmarks.side_by_side import CONFIGS, VARIANTS, gpu_variants, main

    # optional_variants' CUDA and Pallas ones
    names = {"cudnn", "pallas", "pallas_tf32x3", "pallas_units", "pallas_units_tf32x3"}
    names |= {name.removeprefix("seqjax_") for name in gpu_variants(CONFIGS["steel"])}
    assert names == set(VARIANTS)
    with pytest.raises(SystemExit):
        main(["--variant", "fused"])  # the old name of the GPU's default


def test_optional_variants_join_once_they_run_and_a_failure_is_named_not_timed(capsys):
    """What a GPU run builds beside the scan, built here: the CPU ignores the GPU compile
    options, and Pallas compiled for a GPU stands in for a variant that fails there."""
    from benchmarks.side_by_side import (
        CONFIGS,
        SeqjaxStack,
        add_variants,
        gpu_variants,
        inputs,
        jax_fns,
    )

    cfg = CONFIGS["trend"]
    x, lengths = inputs(cfg)
    shape = dict(hidden=cfg["hidden"], layers=cfg["layers"], bi=cfg["bi"])
    variants = {**gpu_variants(cfg), "seqjax_pallas": ({"backend": "pallas"}, None)}
    impls = {"seqjax": jax_fns(SeqjaxStack(**shape), x, lengths)}
    reference = [fn() for fn in impls["seqjax"]]
    errors, diffs = add_variants(impls, variants, shape, x, lengths, reference)
    assert set(impls) == {"seqjax", "seqjax_graphs", "seqjax_two_scans"}
    assert set(diffs) == set(impls) - {"seqjax"}
    assert all(d < 1e-4 for row in diffs.values() for d in row.values())  # same arithmetic
    assert list(errors) == ["seqjax_pallas"]
    assert errors["seqjax_pallas"].startswith("ValueError: LSTM: backend='pallas' cannot run")
    assert "seqjax_pallas did not run" in capsys.readouterr().err


def test_torch_on_one_thread_gets_the_processs_setting_back_even_on_error():
    import torch

    from benchmarks.side_by_side import _on_threads

    before = torch.get_num_threads()
    seen = []
    _on_threads(lambda: seen.append(torch.get_num_threads()), 1)()

    def fails():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        _on_threads(fails, 1)()
    assert seen == [1] and torch.get_num_threads() == before


def test_interleaved_timing_runs_short_calls_in_blocks_whose_first_call_is_not_timed():
    """A call right after another framework's finds the cores busy or its threads asleep;
    short calls run in blocks whose first call absorbs that, the blocks in rounds whose
    orders hand the place after PyTorch to no implementation in particular."""
    import time

    from benchmarks.timing import time_interleaved

    calls = []
    names = ("seqjax", "rev", "torch")
    fns = {name: (lambda name=name: calls.append(name)) for name in names}
    stats = time_interleaved(fns, warmup=1, repeats=300)
    timed = calls[len(names) :]  # after one warm-up call each
    blocks = [timed[i : i + 10] for i in range(0, len(timed), 10)]
    assert len(blocks) == 900 and all(len(set(b)) == 1 for b in blocks)  # 10 alike in a row
    rounds = [[b[0] for b in blocks[i : i + 3]] for i in range(0, len(blocks), 3)]
    assert all(sorted(r) == sorted(names) for r in rounds)
    order = [b[0] for b in blocks]
    after_torch = [b for a, b in zip(order, order[1:], strict=False) if a == "torch"]
    share = after_torch.count("seqjax") / len(after_torch)
    assert 0.4 < share < 0.6, share  # a rotated fixed order gives seqjax 2/3 of them
    assert set(stats) == set(names)
    assert all(s["repeats"] == 300 and s["calls_per_block"] == 10 for s in stats.values())
    assert all(0 <= s["median_ms"] <= s["p90_ms"] for s in stats.values())

    def slow():
        time.sleep(0.06)

    long = time_interleaved({"a": slow, "b": slow}, warmup=1, repeats=2)
    assert long["a"]["calls_per_block"] == 1 and long["a"]["median_ms"] >= 60
    assert time_interleaved({"a": lambda: None}, repeats=2)["a"]["calls_per_block"] == 1


def test_the_untimed_first_call_of_a_block_is_the_one_after_another_implementation():
    import time

    from benchmarks.timing import time_interleaved

    state = {"last": None}

    def make(name):
        def call():
            switched = state["last"] not in (None, name)
            time.sleep(0.025 if switched else 0.005)  # the switch costs 20 ms more
            state["last"] = name

        return call

    # a's 5 ms calls run in blocks (5 calls, fewer if a loaded machine stretches the
    # warm-up); b's warm-up came after a's, so took 25 ms, past block_ms: one call a round
    stats = time_interleaved({"a": make("a"), "b": make("b")}, warmup=1, repeats=10, block_ms=20)
    assert stats["a"]["calls_per_block"] >= 2 and stats["a"]["p90_ms"] < 20
    assert stats["b"]["calls_per_block"] == 1 and stats["b"]["median_ms"] >= 25


def test_interleaved_timing_goes_on_for_min_seconds_within_20x_repeats():
    import time

    from benchmarks.timing import time_interleaved

    def nap():
        time.sleep(0.002)

    short = time_interleaved({"a": nap, "b": nap}, warmup=0, repeats=2, min_seconds=0.1)
    assert short["a"]["calls_per_block"] == 1  # no warm-up call to size a block by
    assert 2 < short["a"]["repeats"] == short["b"]["repeats"] < 40  # ~25 rounds of 4 ms
    capped = time_interleaved({"a": nap}, warmup=0, repeats=2, min_seconds=10.0)
    assert capped["a"]["repeats"] == 40


def test_a_spawned_child_reports_its_own_peak_rss_not_its_parents():
    import multiprocessing

    import numpy as np

    from benchmarks.timing import peak_rss_bytes

    ballast = np.ones(400 * 2**20 // 8)  # 400 MB resident in this process
    parent = peak_rss_bytes()
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        child = pool.apply(peak_rss_bytes)
    assert parent > 400 * 2**20 and child < parent - 300 * 2**20, (parent, child)
    del ballast


def test_kernel_costs_quick_run_writes_each_piece(tmp_path):
    from benchmarks.kernels import main

    out = tmp_path / "kernels.json"
    main(["--quick", "--batch", "4", "--hidden", "8", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["config"] == {"batch": 4, "hidden": 8, "steps": 50, "matmuls": "float32, no TF32"}
    pieces = {"dot", "inference", "inference_both_directions", "forward_saving", "backward"}
    assert set(result["per_step"]) == pieces
    assert all(s["median_us"] > 0 and s["repeats"] == 3 for s in result["per_step"].values())
    assert set(result["weight_grad"]) == {"weight_grad_einsum", "weight_grad_dot_general"}
    assert all(s["gflop_per_s"] > 0 for s in result["weight_grad"].values())
    dots = result["step_dots"]
    shapes = {"one_direction", "block_diagonal_directions", "batched_directions", "twice_as_wide"}
    assert set(dots) == shapes
    assert all(s["median_us"] > 0 and s["gflop_per_s"] > 0 for s in dots.values())
    chains = result["independent_chains"]
    assert set(chains) == {"one_chain", "two_chains"}
    assert all(s["median_us_per_step"] > 0 and s["repeats"] == 12 for s in chains.values())


def test_projection_quick_run_ratios_against_torch_with_projections(tmp_path):
    from benchmarks.projection import main

    out = tmp_path / "projection.json"
    main(["--quick", "--only", "trend", "--repeats", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["command"].startswith("python -m benchmarks.projection --quick")
    trend = result["systems"]["trend"]
    assert trend["config"]["proj_size"] == 32 and trend["config"]["hidden"] == [64]
    impls = {"seqjax", "seqjax_unprojected", "torch_padded", "torch_packed"}
    assert set(trend["timings"]) == impls
    ratios = [*trend["speedup"].values(), *trend["projected_over_unprojected"].values()]
    assert len(trend["speedup"]) == 4 and all(math.isfinite(v) and v > 0 for v in ratios)


def test_cell_quick_run_decodes_as_torch_does_and_ratios_each_reference(tmp_path):
    from benchmarks.cell import main

    out = tmp_path / "cell.json"
    main(["--quick", "--only", "trend", "--repeats", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["command"].startswith("python -m benchmarks.cell --quick")
    trend = result["systems"]["trend"]
    assert trend["config"] == {"batch": 4, "features": 62, "hidden": 64, "steps": 8}
    assert trend["max_abs_diff_vs_torch"] < 1e-5  # the same loop, with PyTorch's weights
    assert set(trend["timings"]) == {"seqjax", "torch_cell", "flax_optimized_cell"}
    ratios = [*trend["speedup"].values(), trend["seqjax_us_per_step"]]
    assert len(trend["speedup"]) == 2 and all(math.isfinite(v) and v > 0 for v in ratios)


@pytest.mark.parametrize("layout", ["rows", "units"])
def test_pallas_tilings_quick_run_times_each_tiling_beside_the_scan(tmp_path, layout):
    """Interpreted (no GPU here): the tilings' speed means nothing, the JSON's shape does."""
    from benchmarks.pallas_tiles import main

    out = tmp_path / "tiles.json"
    main(["--interpret", "--quick", "--layout", layout, "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["interpret"] and result["shape"] == {"batch": 16, "hidden": 32, "steps": 8}
    assert result["layout"] == layout
    prefix = "pallas_" if layout == "rows" else "pallas_units_"
    names = {"scan", *(f"{prefix}float32_unit{u}_warps4" for u in (16, 32))}
    assert set(result["timings"]) == names and set(result["best"].values()) <= names - {"scan"}
    for row in result["timings"].values():
        assert row["compile_s"] > 0 and row["train"]["repeats"] == 3
        assert all(row[f"{k}_us_per_step"] > 0 for k in ("inference", "train"))
        assert all(math.isfinite(v) and v > 0 for v in row["speedup_vs_scan"].values())
        assert all(d < 1e-5 for d in row["max_abs_diff_vs_scan"].values())
    assert result["errors"] == {}
    assert result["timings"]["scan"]["max_abs_diff_vs_scan"] == {"inference": 0, "train": 0}


def test_a_tiling_that_fails_is_named_and_the_others_still_run(monkeypatch, capsys):
    from benchmarks import pallas_tiles

    real = pallas_tiles.layer_fns

    def layer_fns(a, opts):
        if opts is not None and opts.unit == 16:
            raise RuntimeError("out of shared memory")
        return real(a, opts)

    monkeypatch.setattr(pallas_tiles, "layer_fns", layer_fns)
    from seqjax.layers.pallas_lstm import KernelOptions

    grid = [KernelOptions(interpret=True, unit=u, num_warps=4) for u in (16, 32)]
    a = pallas_tiles.layer_inputs(16, 32, 4)
    built, errors = pallas_tiles.build_all(a, grid)
    assert set(built) == {"scan", "pallas_float32_unit32_warps4"}
    assert errors == {"pallas_float32_unit16_warps4": "RuntimeError: out of shared memory"}
    assert "unit16_warps4 did not run" in capsys.readouterr().err


def test_when_no_tiling_runs_the_errors_are_still_written(tmp_path, monkeypatch):
    """The first GPU run of the kernels may reject every tiling; that is a result too."""
    from benchmarks import pallas_tiles

    real = pallas_tiles.layer_fns

    def layer_fns(a, opts):
        if opts is not None:
            raise RuntimeError("Triton rejected it")
        return real(a, opts)

    monkeypatch.setattr(pallas_tiles, "layer_fns", layer_fns)
    out = tmp_path / "tiles.json"
    pallas_tiles.main(["--interpret", "--quick", "--out", str(out)])
    result = json.loads(out.read_text())
    assert list(result["timings"]) == ["scan"]
    assert result["best"] == {"inference": None, "train": None}
    assert len(result["errors"]) == 2
    assert set(result["errors"].values()) == {"RuntimeError: Triton rejected it"}


def test_pallas_tilings_refuse_to_compile_without_a_gpu():
    import jax

    from benchmarks.pallas_tiles import main

    if jax.default_backend() == "gpu":
        pytest.skip("checks the behaviour without a GPU")
    with pytest.raises(SystemExit):
        main(["--quick"])


def test_recurrence_ab_times_a_revision_beside_the_tree():
    from benchmarks.recurrence_ab import main

    result = main(["HEAD", "--batch", "4", "--hidden", "8", "--steps", "20", "--seconds", "0"])
    names = {f"{kind}_{label}" for kind in ("inference", "train") for label in ("rev", "tree")}
    assert set(result["us_per_step"]) == names
    assert all(v > 0 for v in result["us_per_step"].values())


def test_stack_ab_times_a_revisions_stack_beside_the_tree(tmp_path):
    from benchmarks.stack_ab import main

    out = tmp_path / "ab.json"
    result = main(["HEAD", "--only", "trend", "--seconds", "0", "--out", str(out)])
    timings = result["configs"]["trend"]["timings"]
    assert set(timings) == {"tree", "rev", "torch_padded"}
    assert all(t[k]["median_ms"] > 0 for t in timings.values() for k in ("train", "inference_b32"))
    assert set(result["configs"]["trend"]["speedup"]) == {
        "train_tree_over_rev",
        "inference_b32_tree_over_rev",
    }
    assert json.loads(out.read_text())["rev"] == result["rev"]


def test_profile_names_each_loop_once_and_each_step_thunk_once_per_step():
    from benchmarks.profile import main

    result = main(["trend", "--calls", "2", "--timeline", "--min-us", "0"])
    runs = {row["thunk"]: row["runs_per_call"] for row in result["thunks"]}
    loops = [name for name in runs if name.startswith("while")]
    assert len(loops) == 4 and all(runs[name] == 1.0 for name in loops)  # 2 layers x 2 directions
    assert any(count == 12.0 for count in runs.values())  # trend's 12 steps
    starts = [row["start_us"] for row in result["timeline"]]
    assert starts == sorted(starts) and set(loops) <= {row["thunk"] for row in result["timeline"]}
    assert result["untraced_ms"] > 0


def test_profile_reads_a_gpu_traces_device_events_against_the_loops_steps():
    """What a GPU run reads from its trace, on a trace of that shape: only the events of
    the `/device:` processes count, per name, over the calls."""
    from benchmarks.profile import device_table, loop_steps
    from benchmarks.side_by_side import CONFIGS

    processes = {1: "/host:CPU", 7: "/device:GPU:0"}
    events = [
        {"pid": 7, "tid": 3, "name": "gemm", "dur": 4.0},
        {"pid": 7, "tid": 3, "name": "loop_fusion", "dur": 2.0},
        {"pid": 7, "tid": 4, "name": "gemm", "dur": 4.0},
        {"pid": 1, "tid": 9, "name": "gemm", "dur": 100.0},  # the host's launch, not a kernel
    ]
    table = device_table(events, processes, calls=2)
    assert table == [
        {"kernel": "gemm", "us_per_call": 4.0, "runs_per_call": 1.0, "streams": 2},
        {"kernel": "loop_fusion", "us_per_call": 1.0, "runs_per_call": 0.5, "streams": 1},
    ]
    steel = CONFIGS["steel"]  # 2 bidirectional layers of 500 steps
    assert loop_steps(steel, train=False, fused=True) == 1000
    assert loop_steps(steel, train=True, fused=True) == 2000
    assert loop_steps(steel, train=True, fused=False) == 4000
    assert loop_steps(CONFIGS["trust"], train=False, fused=False) == 3 * 2  # 3 modules, T=2


def test_profile_reports_a_gpu_trace_per_loop_step_and_writes_it(tmp_path, capsys):
    """The GPU report itself, on the same kind of synthetic trace: steel's fused inference
    runs 1,000 loop steps, so 2,000 kernels of 2 µs over a 4 ms call are 2 a step, 4 µs of
    kernels a step and the device busy all of it."""
    import argparse

    from benchmarks.profile import _device_report
    from benchmarks.side_by_side import CONFIGS

    processes = {1: "/host:CPU", 7: "/device:GPU:0"}
    events = [{"pid": 7, "tid": 3, "name": f"k{i % 2}", "dur": 2.0} for i in range(2000)]
    out = tmp_path / "profile.json"
    args = argparse.Namespace(train=False, top=5, out=str(out), argv=["steel"])
    result = _device_report(args, CONFIGS["steel"], events, processes, 1, 4e-3, True)
    assert result["loop_steps"] == 1000 and result["device_events_per_step"] == 2.0
    assert result["device_us_per_step"] == 4.0 and result["device_busy_share"] == 1.0
    assert json.loads(out.read_text())["command"] == "python -m benchmarks.profile steel"
    assert "2.00 device events" in capsys.readouterr().out


def test_call_order_times_each_call_after_each_predecessor_itself_included():
    import time

    from benchmarks.call_order import after_each

    state = {"last": None}

    def make(name, ms):
        def call():
            time.sleep((ms + (5 if state["last"] == "slow" else 0)) / 1e3)
            state["last"] = name

        return call

    table = after_each({"fast": make("fast", 1), "slow": make("slow", 3)}, calls=150)
    assert set(table) == {"fast", "slow"}
    assert all(set(row) == {"fast", "slow"} for row in table.values())  # every ordered pair
    assert table["fast"]["slow"] > table["fast"]["fast"] + 3  # the penalty, after slow
    assert table["slow"]["slow"] > table["slow"]["fast"] + 3


def test_host_memory_summary_takes_medians_over_rounds_and_ratios_to_the_default():
    from benchmarks.host_memory import summarise

    def run(ms, faults):
        return {"device": "cpu", "seqjax": {"train": {"median_ms": ms, "faults_per_call": faults}}}

    runs = {
        "default": [run(10.0, 900), run(12.0, 1100), run(11.0, 1000)],
        "reuse": [run(8.0, 0), run(9.0, 2), run(7.0, 1)],
    }
    row = summarise(runs)["seqjax"]["train"]
    assert row["default_ms"] == 11.0 and row["reuse_ms"] == 8.0
    assert row["default_faults_per_call"] == 1000 and row["reuse_faults_per_call"] == 1
    assert row["default_over_reuse"] == 11.0 / 8.0


def test_config_ab_reads_a_systems_result_and_ratios_medians_of_a_over_b():
    from benchmarks.config_ab import FIGURES, figures, summarise

    def measured(train_ms, reused):
        return {
            "train_step": {"median_ms": train_ms},
            "inference": {f"batch_{b}": {"median_ms": b / 10} for b in (1, 32, 256)},
            "memory": {
                "process_peak_rss_bytes": 2**30,
                "train_step_compiled": {"total_bytes": 2**29},
            },
            "host_memory_reused": reused,
        }

    one = figures(measured(5.0, True))
    assert one["train_step_ms"] == 5.0 and one["inference_batch_256_ms"] == 25.6
    assert one["process_peak_rss_gb"] == 1.0 and one["host_memory_reused"] is True
    assert one["train_step_memory_gb"] == 0.5
    runs = {
        "a": [figures(measured(ms, False)) for ms in (12.0, 10.0, 11.0)],
        "b": [figures(measured(ms, True)) for ms in (5.0, 9.0, 4.0)],
    }
    summary = summarise(runs)
    assert summary["a"]["train_step_ms"] == 11.0 and summary["b"]["train_step_ms"] == 5.0
    assert summary["a_over_b"]["train_step_ms"] == 11.0 / 5.0
    assert summary["a_over_b"]["inference_batch_1_ms"] == 1.0
    assert set(summary["a_over_b"]) == set(FIGURES)


def test_config_ab_names_a_missing_config_before_measuring(capsys):
    from benchmarks import config_ab

    with pytest.raises(SystemExit) as exit_:
        config_ab.main(["configs/no_such.yaml", "--a", "train.epochs=1", "--b", "train.epochs=2"])
    assert exit_.value.code == 2
    assert "no such config file: configs/no_such.yaml" in capsys.readouterr().err


def test_buckets_time_an_epoch_per_width_beside_padding_to_the_data(tmp_path):
    from benchmarks.buckets import main

    out = tmp_path / "buckets.json"
    argv = ["--config", "configs/steel_lightweight.yaml", "--widths", "0", "250"]
    argv += ["--rounds", "1", "--length-groups", "1", "--out", str(out)]
    result = main([*argv, "--set", "data.size=40", "train.batch_size=4"])
    rows = {row["bucket_width"]: row for row in result["widths"]}
    assert rows[0]["shapes"] == [500] and rows[0]["mean_padded_steps"] == 500
    assert set(rows[250]["shapes"]) <= {250, 500}
    assert rows[250]["mean_padded_steps"] <= 500
    assert all(len(r["epoch_s"]) == 1 and r["median_epoch_s"] > 0 for r in rows.values())
    assert json.loads(out.read_text())["settings"] == ["data.size=40", "train.batch_size=4"]
    from seqjax.layers.lstm import length_groups_default  # --length-groups is undone after

    assert length_groups_default("cpu", 500) == 4


def test_inference_memory_grows_with_the_rows_of_one_call(tmp_path):
    """Compiled only, nothing run: the JSON's shape, and temporaries that grow with B."""
    from benchmarks.inference_memory import main

    out = tmp_path / "inference_memory.json"
    main(["--only", "trend", "--batches", "2", "64", "--out", str(out)])
    result = json.loads(out.read_text())
    assert (
        result["command"]
        == f"python -m benchmarks.inference_memory --only trend --batches 2 64 --out {out}"
    )
    assert result["target_bytes"] == 4 * 2**30 and "jax" in result["environment"]
    trend = result["systems"]["trend"]
    assert trend["config"] == "configs/trend.yaml" and trend["input_shape"] == [12, 62]
    small, large = trend["batches"]["batch_2"], trend["batches"]["batch_64"]
    assert small["argument_bytes"] > 4 * 231_560  # the parameters are arguments
    assert large["temp_bytes"] > 4 * small["temp_bytes"]  # 32x the rows: each step's gates
    assert large["within_target"] and large["total_bytes"] < result["target_bytes"]


def test_load_run_mesh_times_a_run_on_one_device_and_on_the_mesh(tmp_path):
    """In this process JAX has started with its devices (one CPU device here), so the mesh
    is theirs: the JSON's shape and the predictions' agreement, not a speed-up."""
    from benchmarks.load_run_mesh import main
    from tests.runs import train_run

    run = train_run(tmp_path / "run", "configs/trust.yaml", "data.size=120", "train.epochs=1")
    out = tmp_path / "load_run_mesh.json"
    result = main([str(run), "--repeats", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["command"].startswith("python -m benchmarks.load_run_mesh ")
    assert result["sequences"] == 18 and result["input_shape"] == [2, 768]
    assert result["batch_size"] == 32 and result["max_abs_diff"] < 1e-6
    assert set(result["timings"]) == {"one_device", "mesh"}
    assert math.isfinite(result["mesh_speedup"]) and result["mesh_speedup"] > 0
