"""The loop shape `LSTM` picks per platform when `unroll`, `projection_chunk` and
`fused_directions` are left at None (`loop_defaults`, `fused_directions_default`), and that
the accelerators' shape computes what the CPU's does: on a CPU-only machine this is the
only check of the loop a GPU or TPU runs by default."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import LSTM
from seqjax.layers.loop_defaults import fused_directions_default, loop_defaults


def test_cpu_projects_narrow_inputs_in_the_loop_and_wide_ones_up_front():
    assert loop_defaults("cpu", 5, 128, 500) == (1, 1, 1)  # steel's first layer
    assert loop_defaults("cpu", 62, 64, 12) == (1, 1, 0)  # trend's: up front for inference
    assert loop_defaults("cpu", 256, 128, 500) == (1, 0, 32)  # inference in ~32-step chunks
    assert loop_defaults("cpu", 128, 64, 12) == (1, 0, 0)  # one chunk holds all 12 steps


@pytest.mark.parametrize("platform", ["gpu", "tpu"])
def test_accelerators_unroll_16_and_project_the_whole_sequence(platform):
    for features, hidden, steps in [(5, 128, 500), (256, 128, 500), (128, 64, 12)]:
        assert loop_defaults(platform, features, hidden, steps) == (16, 0, 0)


def test_accelerators_fuse_the_directions_and_the_cpu_does_not():
    assert [fused_directions_default(p) for p in ("cpu", "gpu", "tpu")] == [False, True, True]


def test_fused_directions_left_at_none_follow_the_platform_unless_length_groups_run():
    on_this_platform = fused_directions_default(jax.default_backend())
    assert LSTM(8, bidirectional=True)._fused(groups=1) is on_this_platform
    assert LSTM(8, bidirectional=True)._fused(groups=4) is False  # phased loops: two scans
    assert LSTM(8, bidirectional=True, fused_directions=True)._fused(groups=1) is True
    assert LSTM(8, bidirectional=True, fused_directions=False)._fused(groups=1) is False


def test_options_set_on_the_layer_win_over_the_defaults():
    platform = jax.default_backend()
    assert LSTM(8)._loop_shape(5, 100) == loop_defaults(platform, 5, 8, 100)
    assert LSTM(8, unroll=3)._loop_shape(5, 100)[0] == 3
    assert LSTM(8, projection_chunk=7)._loop_shape(5, 100)[1:] == (7, 7)


def test_the_accelerator_loop_shape_equals_the_cpu_one_with_gradients():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 21, 4)).astype(np.float32)  # (B, T, F): T not a multiple of 4
    lengths = np.array([21, 2, 17], np.int32)
    x[np.arange(21) >= lengths[:, None]] = 1e6  # garbage the padding must never reach
    x, lengths = jnp.asarray(x), jnp.asarray(lengths)
    kwargs = dict(hidden_size=6, bidirectional=True)
    cpu = LSTM(**kwargs, unroll=1, projection_chunk=1)  # F < H: the CPU's choice
    # The accelerators unroll 16; seqjax hands `unroll` to lax.scan unchanged, which runs any
    # factor and its remainder alike, and 4 compiles in 3 s where 16 took 14 s on a 2-core CPU.
    # They also run the two directions as one scan (`fused_directions_default`).
    accelerator = LSTM(**kwargs, unroll=4, projection_chunk=0, fused_directions=True)
    variables = jax.jit(cpu.init)(jax.random.key(0), x, lengths)

    def value_and_grads(model):
        def loss(v, x):
            out, (h, c) = model.apply(v, x, lengths)
            return jnp.sum(out**2) + jnp.sum(h * c), out

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(variables, x)

    (_, out), grads = value_and_grads(cpu)
    (_, acc_out), acc_grads = value_and_grads(accelerator)
    chex.assert_trees_all_close(acc_out, out, rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(acc_grads, grads, rtol=1e-4, atol=1e-5)
    assert float(jnp.abs(out[1, 2:]).max()) == 0.0  # zero past the length of 2
    # without a gradient the scan takes its inference path
    inference = jax.jit(accelerator.apply)(variables, x, lengths)[0]
    chex.assert_trees_all_close(inference, out, rtol=1e-5, atol=1e-5)
