"""`seqjax.host_memory`: freed host memory kept in the process where asked for, checked by
the page faults a block's second use takes. Each case runs in a fresh interpreter, since
the settings act on the whole process and cannot be undone."""

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
applied = reuse_freed_memory_if_asked()
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


def _second_touch(env_value: str | None) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k != host_memory.ENV}
    if env_value is not None:
        env[host_memory.ENV] = env_value
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


@linux_glibc
def test_asked_for_a_freed_block_is_reused_without_page_faults():
    applied, faults = _second_touch("1")
    assert applied
    assert faults < 100, faults  # the same pages again: none faulted in anew


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
