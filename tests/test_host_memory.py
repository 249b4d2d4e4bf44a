"""`seqjax.host_memory`: freed host memory kept in the process where asked for (by the
environment or a config's `host.reuse_freed_memory`), checked by the page faults a block's
second use takes. Each such case runs in a fresh interpreter, since the settings act on the
whole process and cannot be undone."""

import os
import subprocess
import sys

import pytest

from seqjax import host_memory

# Touch a block twice (malloc, write every page, free) and print whether the settings were
# asked for and took effect, and the minor page faults of the second touch. 40 MB is above
# glibc's largest mmap threshold (32 MB), so by default the block gets a mapping of its own
# each time.
SCRIPT = """
import ctypes, resource
from seqjax.host_memory import reuse_freed_memory_if_asked
applied = reuse_freed_memory_if_asked(configured=CONFIGURED)
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.memset.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
size = 40 * 2**20

def touch():
    block = libc.malloc(size)
    libc.memset(block, 1, size)
    libc.free(block)

touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

linux_glibc = pytest.mark.skipif(
    host_memory._glibc() is None, reason="the settings are glibc's (Linux)"
)


def _second_touch(env_value: str | None, configured: bool = False) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k != host_memory.ENV}
    if env_value is not None:
        env[host_memory.ENV] = env_value
    script = SCRIPT.replace("CONFIGURED", str(configured))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


@linux_glibc
def test_asked_for_a_freed_block_is_reused_without_page_faults():
    applied, faults = _second_touch("1")
    assert applied
    assert faults < 100, faults  # the same pages again: none faulted in anew


@linux_glibc
def test_a_config_that_asks_for_it_gets_it_without_the_environment():
    applied, faults = _second_touch(None, configured=True)
    assert applied
    assert faults < 100, faults


@linux_glibc
@pytest.mark.parametrize("value", [None, "0"])
def test_unasked_malloc_maps_each_large_block_afresh(value):
    applied, faults = _second_touch(value)
    assert not applied
    assert faults > 5000, faults  # 40 MB of fresh 4 KB pages: ~10,240 faults


def test_off_linux_nothing_is_changed(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert host_memory._glibc() is None
    assert host_memory.reuse_freed_memory() is False


def test_the_command_sets_it_up_before_parsing(monkeypatch):
    from seqjax import cli

    calls = []
    monkeypatch.setattr(cli, "reuse_freed_memory_if_asked", lambda: calls.append("cli"))
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])
    assert calls == ["cli"]


def test_run_experiment_applies_the_config_before_loading_data(monkeypatch, tmp_path):
    from seqjax.config import load_config
    from seqjax.train import run

    class Applied(Exception):
        pass

    seen = []

    def record(configured):
        seen.append(configured)
        raise Applied  # stop before any data is generated or JAX runs

    monkeypatch.setattr(run, "reuse_freed_memory_if_asked", record)
    monkeypatch.setattr(run, "load_splits", lambda _: pytest.fail("data loaded first"))
    for value in (True, False):
        cfg = load_config("configs/trust.yaml", [f"host.reuse_freed_memory={value}"])
        with pytest.raises(Applied):
            run.run_experiment(cfg, str(tmp_path / "run"))
    assert seen == [True, False]


# Each config's value as measured (benchmarks/results/config_ab_host_memory_cpu_amd-epyc.json):
# long sequences with wide enough states fault their temporaries in on every call; trust's
# 2 steps and trend's 12 do not and would only pay the arena's lock; steel_lightweight
# (H=32) gained too little in training for what its batch-1 inference lost.
ON = ["steel_standard", "steel_deep", "steel_bidirectional", "hybrid", "lstm_baseline"]
OFF = ["trust", "trend", "steel_lightweight"]


@pytest.mark.parametrize("config, on", [(c, True) for c in ON] + [(c, False) for c in OFF])
def test_the_seed_configs_ask_for_it_where_sequences_are_long(config, on):
    from seqjax.config import load_config

    assert load_config(f"configs/{config}.yaml").host.reuse_freed_memory is on


def test_every_shipped_config_has_a_measured_value_here():
    shipped = sorted(f.removesuffix(".yaml") for f in os.listdir("configs") if f.endswith(".yaml"))
    assert sorted(ON + OFF) == shipped
