"""A plain NumPy LSTM with PyTorch's equations and pack_padded_sequence semantics: each
sequence is run on its own valid prefix, the reverse direction on that prefix reversed."""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _run(x, w_ih, w_hh, b_ih, b_hh):
    """x (T, F) valid steps only; PyTorch-layout weights (4H, F), (4H, H). Returns (T, H), h, c."""
    hidden = w_hh.shape[1]
    h = np.zeros(hidden)
    c = np.zeros(hidden)
    outs = []
    for x_t in x:
        z = w_ih @ x_t + b_ih + w_hh @ h + b_hh
        i, f, g, o = np.split(z, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        outs.append(h)
    return np.stack(outs), h, c


def numpy_lstm(x, lengths, state_dict, *, num_layers, bidirectional):
    """x (B, T, F) float64. Returns outputs (B, T, D*H) and (h_n, c_n) each (L*D, B, H)."""
    batch, max_len, _ = x.shape
    dirs = 2 if bidirectional else 1
    hidden = state_dict["weight_hh_l0"].shape[1]
    outputs = np.zeros((batch, max_len, dirs * hidden))
    h_n = np.zeros((num_layers * dirs, batch, hidden))
    c_n = np.zeros_like(h_n)
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
                inp = seq[::-1] if d else seq
                out, h, c = _run(inp, *params)
                outs.append(out[::-1] if d else out)
                h_n[layer * dirs + d, b] = h
                c_n[layer * dirs + d, b] = c
            seq = np.concatenate(outs, axis=-1)
        outputs[b, : lengths[b]] = seq
    return outputs, (h_n, c_n)


def random_state_dict(rng, features, hidden, *, num_layers, bidirectional, scale=0.3):
    sd = {}
    for layer in range(num_layers):
        in_f = features if layer == 0 else hidden * (2 if bidirectional else 1)
        for sfx in ("", "_reverse") if bidirectional else ("",):
            s = f"_l{layer}{sfx}"
            sd["weight_ih" + s] = rng.uniform(-scale, scale, (4 * hidden, in_f)).astype(np.float32)
            sd["weight_hh" + s] = rng.uniform(-scale, scale, (4 * hidden, hidden)).astype(
                np.float32
            )
            sd["bias_ih" + s] = rng.uniform(-scale, scale, (4 * hidden,)).astype(np.float32)
            sd["bias_hh" + s] = rng.uniform(-scale, scale, (4 * hidden,)).astype(np.float32)
    return sd
