"""`LSTM(proj_size=P)`, PyTorch's LSTM with projections: each step's o * tanh(c) goes
through W_hr (H, P) before it is the output and the next step's h. Values and gradients
against `torch.nn.LSTM(proj_size=P)` over packed sequences for every scan variant, float64
gradients against finite differences, the weights both ways by name, the errors, and the
batch split over two CPU devices."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from seqjax.interop import lstm_params_from_torch, lstm_params_to_torch
from seqjax.layers import LSTM
from seqjax.torch_weights import from_torch_state_dict, to_torch_state_dict
from tests.cpu_devices_subprocess import run_on_cpu_devices
from tests.lstm_reference import numpy_lstm, random_state_dict

B, T, F, H, P = 3, 7, 4, 6, 3
LENGTHS = np.array([7, 2, 5], np.int32)

# Each a path of its own through the recurrence (seqjax/layers/recurrence.py).
VARIANTS = {
    "default": {},
    "step_projection": {"projection_chunk": 1},
    "projection_chunks": {"projection_chunk": 3},
    "remat_chunk": {"remat_chunk": 3},
    "length_groups": {"length_groups": 2},
    "fused_directions": {"fused_directions": True},
    "autodiff": {"backward": "autodiff"},
}


def _torch_run(ref, x, h0, c0):
    """torch's outputs (B, T, D*P), h_n, c_n and gradients (state-dict names, and "x") of
    `_loss` over the packed batch (the callers skip where torch is missing)."""
    import torch

    xt = torch.from_numpy(x).requires_grad_()
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.from_numpy(LENGTHS.astype(np.int64)), batch_first=True, enforce_sorted=False
    )
    out_p, (h_n, c_n) = ref(packed, (torch.from_numpy(h0), torch.from_numpy(c0)))
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True, total_length=T)
    _loss(out, h_n, c_n).backward()
    grads = {k: v.grad.numpy() for k, v in ref.named_parameters()}
    values = [a.detach().numpy() for a in (out, h_n, c_n)]
    return values, {**grads, "x": xt.grad.numpy()}


def _loss(out, h_n, c_n):
    """A loss of all three results, with the P-wide h_n against c_n's first P units."""
    return (out**2).sum() + (h_n * c_n[..., :P]).sum() + c_n.sum()


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_values_and_gradients_equal_torch_packed(variant):
    """Two bidirectional layers (the second sees 2P inputs), an initial state and a
    sequence of 2 steps among 7: outputs, h_n, c_n and every gradient, inputs included."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch.nn.LSTM(F, H, num_layers=2, bidirectional=True, proj_size=P, batch_first=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, F)).astype(np.float32)
    h0 = rng.standard_normal((4, B, P)).astype(np.float32)
    c0 = rng.standard_normal((4, B, H)).astype(np.float32)
    want, want_grads = _torch_run(ref, x, h0, c0)
    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    variables = lstm_params_from_torch(sd, num_layers=2, bidirectional=True, proj_size=P)
    model = LSTM(H, 2, bidirectional=True, proj_size=P, **VARIANTS[variant])

    def loss(v, x):
        results = model.apply(v, x, jnp.asarray(LENGTHS), initial_state=(h0, c0))
        out, (h_n, c_n) = results
        return _loss(out, h_n, c_n), (out, h_n, c_n)

    (_, got), (grads, dx) = jax.value_and_grad(loss, (0, 1), has_aux=True)(variables, x)
    chex.assert_trees_all_close([np.asarray(a) for a in got], want, rtol=1e-5, atol=1e-5)
    got_grads = {**lstm_params_to_torch(grads), "x": np.asarray(dx)}
    assert sorted(got_grads) == sorted(want_grads)
    chex.assert_trees_all_close(got_grads, want_grads, rtol=1e-5, atol=1e-5)


def test_one_layer_shapes_and_parameters_are_torchs():
    """Unidirectional, no initial state: torch's shapes, parameter names and shapes, and its
    packed outputs; the weights go both ways by name, alone and inside a whole model."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    ref = torch.nn.LSTM(F, H, proj_size=P, batch_first=True)
    x = np.random.default_rng(3).standard_normal((B, T, F)).astype(np.float32)
    zeros = np.zeros((1, B, P), np.float32), np.zeros((1, B, H), np.float32)
    want, _ = _torch_run(ref, x, *zeros)
    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    model = LSTM(H, proj_size=P)
    built = jax.jit(model.init)(jax.random.key(0), x, LENGTHS)
    shapes = {k: v.shape for k, v in lstm_params_to_torch(built).items()}  # torch's layout
    assert shapes == {k: v.shape for k, v in sd.items()}
    variables = lstm_params_from_torch(sd, num_layers=1, bidirectional=False, proj_size=P)
    out, (h_n, c_n) = model.apply(variables, x, LENGTHS)
    assert (out.shape, h_n.shape, c_n.shape) == ((B, T, P), (1, B, P), (1, B, H))
    chex.assert_trees_all_close([np.asarray(a) for a in (out, h_n, c_n)], want, atol=1e-5)
    back = lstm_params_to_torch(variables)
    assert all(np.array_equal(back[k], sd[k]) for k in sd) and sorted(back) == sorted(sd)
    # inside a whole model, as safetensors files carry it: PyTorch's `lstm.weight_hr_l0`
    nested = {"params": {"lstm": variables["params"]}}
    named = to_torch_state_dict(nested, "custom")
    assert all(np.array_equal(named[f"lstm.{k}"], sd[k]) for k in sd) and len(named) == len(sd)
    restored = from_torch_state_dict({f"lstm.{k}": v for k, v in sd.items()}, nested, "custom")
    chex.assert_trees_all_equal(restored, jax.tree.map(np.asarray, nested))


def test_float64_values_and_gradients_equal_reference_and_finite_differences():
    """Under x64: values equal the NumPy reference to 1e-12, and the hand-written backward
    passes (default, remat, length groups, fused) agree with central differences to 1e-8,
    a length-0 row included."""
    lengths = np.array([7, 0, 5], np.int32)
    rng = np.random.default_rng(4)
    sd = random_state_dict(rng, F, H, num_layers=2, bidirectional=True, proj_size=P)
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    x = rng.standard_normal((B, T, F))
    h0, c0 = rng.standard_normal((4, B, P)), rng.standard_normal((4, B, H))
    dy, dh, dc = (rng.standard_normal(s) for s in ((B, T, 2 * P), (4, B, P), (4, B, H)))
    with jax.enable_x64(True):
        v = lstm_params_from_torch(
            sd, num_layers=2, bidirectional=True, proj_size=P, dtype=np.float64
        )
        for variant in ("default", "remat_chunk", "length_groups", "fused_directions"):
            layer = LSTM(
                H, 2, bidirectional=True, proj_size=P, dtype=jnp.float64,
                param_dtype=jnp.float64, **VARIANTS[variant],
            )  # fmt: skip

            @jax.jit
            def loss(x, v, h0, c0, layer=layer):
                out, (h, c) = layer.apply(v, x, jnp.asarray(lengths), initial_state=(h0, c0))
                return (out * dy).sum() + (h * dh).sum() + (c * dc).sum()

            if variant == "default":
                out, (h, c) = layer.apply(v, x, lengths, initial_state=(h0, c0))
                ref = numpy_lstm(
                    x, lengths, sd, num_layers=2, bidirectional=True, initial_state=(h0, c0)
                )
                chex.assert_trees_all_close((out, h, c), (ref[0], *ref[1]), atol=1e-12)
            check_grads(
                loss, (x, v, h0, c0), order=1, modes=["rev"], eps=1e-6, atol=1e-8, rtol=1e-8
            )


def test_bad_sizes_backends_and_weights_are_named():
    x, lengths = jnp.zeros((2, 5, F)), jnp.array([5, 3])
    for size in (H, H + 1, -1):
        with pytest.raises(
            ValueError, match=rf"proj_size must lie in \[0, hidden_size=6\).*{size}"
        ):
            LSTM(H, proj_size=size).init(jax.random.key(0), x, lengths)
    with pytest.raises(ValueError, match="backend='cudnn' cannot run here: .*proj_size needs"):
        LSTM(H, proj_size=P, backend="cudnn").init(jax.random.key(0), x, lengths)
    pallas = LSTM(8, proj_size=P, backend="pallas", pallas_interpret=True)
    with pytest.raises(ValueError, match="backend='pallas' cannot run here: .*proj_size needs"):
        pallas.init(jax.random.key(0), x, lengths)
    model = LSTM(H, proj_size=P)
    variables = jax.jit(model.init)(jax.random.key(0), x, lengths)
    wrong_h = (jnp.zeros((1, 2, H)), jnp.zeros((1, 2, H)))
    with pytest.raises(ValueError, match=r"initial_state h_0 must have shape \(1, 2, 3\)"):
        model.apply(variables, x, lengths, initial_state=wrong_h)
    wrong_c = (jnp.zeros((1, 2, P)), jnp.zeros((1, 2, P)))
    with pytest.raises(ValueError, match=r"initial_state c_0 must have shape \(1, 2, 6\)"):
        model.apply(variables, x, lengths, initial_state=wrong_c)

    sd = random_state_dict(np.random.default_rng(0), F, H, num_layers=1, bidirectional=False)
    projected = random_state_dict(
        np.random.default_rng(0), F, H, num_layers=1, bidirectional=False, proj_size=P
    )
    with pytest.raises(ValueError, match=r"weight_hr_\* projections.*pass proj_size=3"):
        lstm_params_from_torch(projected, num_layers=1, bidirectional=False)
    with pytest.raises(ValueError, match=r"proj_size=3; missing \['weight_hr_l0'\]"):
        lstm_params_from_torch(
            {**sd, "weight_hh_l0": projected["weight_hh_l0"]},
            num_layers=1, bidirectional=False, proj_size=P,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"weight_hh_l0 must have shape \(4\*6, 3\)"):
        lstm_params_from_torch(
            {**projected, "weight_hh_l0": sd["weight_hh_l0"]},
            num_layers=1, bidirectional=False, proj_size=P,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"weight_hr_l0 must have shape \(3, 6\); got \(6, 3\)"):
        lstm_params_from_torch(
            {**projected, "weight_hr_l0": projected["weight_hr_l0"].T},
            num_layers=1, bidirectional=False, proj_size=P,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"proj_size must lie in \(0, 6\).*got 6"):
        lstm_params_from_torch(projected, num_layers=1, bidirectional=False, proj_size=H)


SCRIPT = """
import json
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import AxisType, PartitionSpec as P
from seqjax.layers import LSTM
from seqjax.train.sharding import data_sharding, make_mesh, replicated

rng = np.random.default_rng(0)
x = rng.standard_normal((4, 128, 2)).astype(np.float32)  # (B, T, F)
lengths = np.array([128, 70, 101, 33], np.int32)
model = LSTM(6, bidirectional=True, proj_size=3)  # T=128 on CPU: length groups by default
variables = jax.jit(model.init)(jax.random.key(0), x, lengths)

def loss(v, x, n):
    y, (h_n, c_n) = model.apply(v, x, n)
    return jnp.sum(y**2) + jnp.sum(h_n) + jnp.sum(c_n)

def largest_difference(a, b):
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return max(float(jnp.max(jnp.abs(p - q))) for p, q in pairs)

grad = jax.jit(jax.value_and_grad(loss))
want = grad(variables, x, lengths)
out = {"groups": model.bind(variables)._length_groups(128, x, False)}
mesh = make_mesh(jax.devices())  # rows sorted and grouped per shard
dat = data_sharding(mesh)
split = [jax.device_put(a, dat) for a in (x, lengths)]
got = grad(jax.device_put(variables, replicated(mesh)), *split)
out["auto"] = largest_difference(got, want)
explicit = jax.make_mesh((2,), ("data",), axis_types=(AxisType.Explicit,))
with jax.set_mesh(explicit):
    split = [jax.device_put(a, P("data")) for a in (x, lengths)]
    got = grad(jax.device_put(variables, P()), *split)
out["explicit"] = largest_difference(got, want)
print(json.dumps(out))
"""


def test_the_batch_split_over_two_devices_gives_one_devices_values_and_gradients():
    """Length groups per shard under an automatic mesh, and an explicit mesh's typed
    split, each within 1e-4 of one device: the projection's weights and gradient take the
    same paths as W_hh's."""
    out = run_on_cpu_devices(SCRIPT)
    assert out["groups"] > 1
    assert out["auto"] < 1e-4 and out["explicit"] < 1e-4, out
