"""The suite compiles with XLA settings of its own (tests/conftest.py): LLVM at level 0 and
XLA's older CPU fusion emitter. Its tests speak for what users run only while those
settings change the machine code alone, so this checks that XLA still optimises a
program to the same HLO under them: the same text at level 0 as at XLA's default level,
and the same fusions with the older emitter, which only leaves the lone scalar ops the
default wraps in fusions of their own (a loop counter's add or compare) unwrapped. In
subprocesses: XLA reads its flags once per process."""

import os
import re
import subprocess
import sys

from tests.conftest import SUITE_XLA_FLAGS, xla_accepts

# The optimised HLO of a 2-layer bidirectional LSTM's backward pass over padded sequences.
SCRIPT = """
import jax, jax.numpy as jnp
from seqjax.layers import LSTM
lstm = LSTM(hidden_size=8, num_layers=2, bidirectional=True)
x, lengths = jnp.ones((4, 6, 3)), jnp.array([6, 4, 2, 1])
variables = lstm.init(jax.random.PRNGKey(0), x, lengths)
loss = lambda v: (lstm.apply(v, x, lengths)[0] ** 2).sum()
print(jax.jit(jax.grad(loss)).lower(variables).compile().as_text())
"""


def _optimised_hlo(*flags: str) -> str:
    env = dict(os.environ, XLA_FLAGS=" ".join(flags))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # compiled here, not read from the cache
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _fusions(hlo: str) -> tuple[list[str], int]:
    """Each fusion's name (numbers dropped) and kind, sorted; and how many are wrapped."""
    found = re.findall(r"%([\w.-]+) = \S.*? fusion\(.*?kind=(k\w+)", hlo)
    named = sorted(f"{re.sub(r'[.0-9]+$', '', name)} {kind}" for name, kind in found)
    wrapped = [f for f in named if f.startswith("wrapped_")]
    return [f for f in named if not f.startswith("wrapped_")], len(wrapped)


def _numbers_dropped(hlo: str) -> str:
    return re.sub(r"[0-9]+", "", hlo)


def test_the_suites_compiler_settings_leave_the_hlo_users_compile():
    level, emitter = (f"{name}={value}" for name, value in SUITE_XLA_FLAGS.items())
    users = _optimised_hlo()  # XLA's defaults
    assert _numbers_dropped(_optimised_hlo(level)) == _numbers_dropped(users)
    if not xla_accepts(emitter):  # jax >= 0.11: the MLIR emitters are the only ones
        return
    fusions, wrapped = _fusions(users)
    suites_fusions, suites_wrapped = _fusions(_optimised_hlo(level, emitter))
    assert len(fusions) > 10 and wrapped > 0  # what is compared is there
    assert suites_fusions == fusions and suites_wrapped == 0
