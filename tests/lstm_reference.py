"""A plain NumPy LSTM with PyTorch's equations and pack_padded_sequence semantics: each
sequence is run on its own valid prefix, the reverse direction on that prefix reversed."""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _run(x, w_ih, w_hh, b_ih, b_hh, h, c, w_hr=None):
    """x (T, F) valid steps only (T may be 0); PyTorch-layout weights (4H, F), (4H, H);
    h, c (H,) the initial state. With a projection w_hr (P, H), w_hh is (4H, P) and h (P,).
    Returns (T, H) (or (T, P)), h, c."""
    outs = [np.zeros((0, w_hh.shape[1]))]
    for x_t in x:
        z = w_ih @ x_t + b_ih + w_hh @ h + b_hh
        i, f, g, o = np.split(z, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        if w_hr is not None:
            h = w_hr @ h
        outs.append(h[None])
    return np.concatenate(outs), h, c


def numpy_lstm(x, lengths, state_dict, *, num_layers, bidirectional, initial_state=None):
    """x (B, T, F) float64; lengths in [0, T]; initial_state (h_0, c_0) each (L*D, B, H),
    zeros if None. Returns outputs (B, T, D*H) and (h_n, c_n) each (L*D, B, H). A state
    dict with `weight_hr_*` projections (P, H) gives outputs (B, T, D*P), h_n (L*D, B, P)."""
    batch, max_len, _ = x.shape
    dirs = 2 if bidirectional else 1
    hidden = state_dict["weight_hh_l0"].shape[0] // 4
    width = state_dict["weight_hh_l0"].shape[1]  # P with a projection, else H
    outputs = np.zeros((batch, max_len, dirs * width))
    h_n = np.zeros((num_layers * dirs, batch, width))
    c_n = np.zeros((num_layers * dirs, batch, hidden))
    h_0, c_0 = (np.asarray(s, np.float64) for s in initial_state or (h_n, c_n))
    for b in range(batch):
        seq = x[b, : lengths[b]].astype(np.float64)
        for layer in range(num_layers):
            outs = []
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                params = [
                    state_dict[p + sfx].astype(np.float64)
                    for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                ]
                w_hr = state_dict.get("weight_hr" + sfx)
                inp = seq[::-1] if d else seq
                k = layer * dirs + d
                out, h, c = _run(inp, *params, h_0[k, b], c_0[k, b], w_hr)
                outs.append(out[::-1] if d else out)
                h_n[k, b] = h
                c_n[k, b] = c
            seq = np.concatenate(outs, axis=-1)
        outputs[b, : lengths[b]] = seq
    return outputs, (h_n, c_n)


def random_state_dict(rng, features, hidden, *, num_layers, bidirectional, scale=0.3, proj_size=0):
    """An nn.LSTM state dict of uniform random float32 weights; with `proj_size` P, one of
    `nn.LSTM(proj_size=P)` (its `weight_hr_*`)."""
    sd = {}
    width = proj_size or hidden  # of h, and of each direction's output
    for layer in range(num_layers):
        in_f = features if layer == 0 else width * (2 if bidirectional else 1)
        for sfx in ("", "_reverse") if bidirectional else ("",):
            s = f"_l{layer}{sfx}"
            sd["weight_ih" + s] = rng.uniform(-scale, scale, (4 * hidden, in_f)).astype(np.float32)
            sd["weight_hh" + s] = rng.uniform(-scale, scale, (4 * hidden, width)).astype(np.float32)
            if proj_size:
                sd["weight_hr" + s] = rng.uniform(-scale, scale, (proj_size, hidden)).astype(
                    np.float32
                )
            sd["bias_ih" + s] = rng.uniform(-scale, scale, (4 * hidden,)).astype(np.float32)
            sd["bias_hh" + s] = rng.uniform(-scale, scale, (4 * hidden,)).astype(np.float32)
    return sd
