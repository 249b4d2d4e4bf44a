"""Moving LSTM weights between Flax's own cells (`nn.LSTMCell`, `nn.OptimizedLSTMCell`,
as `nn.RNN` and `nn.Bidirectional` hold them) and seqjax's `LSTM`.

Why: a model trained with stock Flax's `nn.RNN(nn.OptimizedLSTMCell(H))` stack switches to
seqjax's layer without retraining. The two compute the same function: Flax's cells use
PyTorch's gate equations (i, f, g, o; sigmoid, sigmoid, tanh, sigmoid), and `nn.RNN` with
`seq_lengths` stops each sequence at its length, its reverse direction
(`nn.Bidirectional`'s, `keep_order=True`) starting at each sequence's own last step, as
seqjax's masking does.

A Flax cell holds one (in, H) kernel per gate for the input (`ii`, `if`, `ig`, `io`, no
bias) and one (H, H) kernel and bias per gate for the hidden state (`hi`, `hf`, `hg`,
`ho`). seqjax's layer-direction holds them side by side: `kernel_ih` (F, 4H) and
`kernel_hh` (H, 4H) in gate order i, f, g, o, and two biases whose sum is what counts;
Flax's bias becomes `bias_hh` and `bias_ih` is zero. Back to Flax, the two biases are
summed into the hidden gates' biases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

GATES = ("i", "f", "g", "o")  # PyTorch's and cuDNN's order, seqjax's column blocks


def _cell_arrays(cell: Mapping, index: int) -> tuple[list, list, list]:
    """(input kernels, hidden kernels, hidden biases) of one Flax cell, gate by gate,
    each checked for presence and rank; errors name the cell and the key."""
    cell = cell.get("cell", cell)  # nn.RNN's subtree, or the cell's own params
    wanted = [f"i{g}" for g in GATES] + [f"h{g}" for g in GATES]
    missing = [k for k in wanted if k not in cell or "kernel" not in cell[k]]
    missing += [f"h{g}/bias" for g in GATES if f"h{g}" in cell and "bias" not in cell[f"h{g}"]]
    extra = sorted(set(cell) - set(wanted))
    if missing or extra:
        raise ValueError(
            f"lstm_params_from_flax_cells: cell {index} is not an nn.LSTMCell or "
            f"nn.OptimizedLSTMCell's parameters; missing {missing}, unexpected {extra}"
        )
    ins = [np.asarray(cell[f"i{g}"]["kernel"]) for g in GATES]  # each (F, H)
    hids = [np.asarray(cell[f"h{g}"]["kernel"]) for g in GATES]  # each (H, H)
    biases = [np.asarray(cell[f"h{g}"]["bias"]) for g in GATES]  # each (H,)
    return ins, hids, biases


def lstm_params_from_flax_cells(
    cells: Sequence[Mapping],
    *,
    num_layers: int,
    bidirectional: bool,
    dtype: np.typing.DTypeLike = np.float32,
) -> dict:
    """`{"params": ...}` for `seqjax.layers.LSTM(H, num_layers, bidirectional)` from one
    Flax `LSTMCell` / `OptimizedLSTMCell` parameter dict per layer-direction, in
    PyTorch's order: layer 0 forward, (layer 0 backward), layer 1 forward, ... For an
    `nn.Bidirectional(nn.RNN(cell), nn.RNN(cell))` layer that is its `forward_rnn` then its
    `backward_rnn` subtree (a `cell` key inside is looked through).

    Raises ValueError naming the cell and what is missing, unexpected or mis-shaped."""
    dirs = 2 if bidirectional else 1
    if len(cells) != num_layers * dirs:
        raise ValueError(
            f"lstm_params_from_flax_cells: {num_layers} layers, "
            f"{'bidirectional' if bidirectional else 'one direction'}, need {num_layers * dirs} "
            f"cells; got {len(cells)}"
        )
    params: dict[str, dict[str, np.ndarray]] = {}
    hidden = None
    for index, cell in enumerate(cells):
        layer, reverse = divmod(index, dirs)
        ins, hids, biases = _cell_arrays(cell, index)
        hidden = hidden or hids[0].shape[-1]
        features = ins[0].shape[0] if layer == 0 else dirs * hidden
        shapes = {
            "input kernels": ([a.shape for a in ins], (features, hidden)),
            "hidden kernels": ([a.shape for a in hids], (hidden, hidden)),
            "hidden biases": ([a.shape for a in biases], (hidden,)),
        }
        for what, (got, want) in shapes.items():
            if any(shape != want for shape in got):
                raise ValueError(
                    f"lstm_params_from_flax_cells: cell {index} (layer {layer}) has {what} "
                    f"of shapes {got}; expected each {want}"
                )
        bias = np.concatenate(biases).astype(dtype)  # (4H,)
        params[f"l{layer}" + ("_reverse" if reverse else "")] = {
            "kernel_ih": np.concatenate(ins, axis=1).astype(dtype),  # (F, 4H)
            "kernel_hh": np.concatenate(hids, axis=1).astype(dtype),  # (H, 4H)
            "bias_ih": np.zeros_like(bias),
            "bias_hh": bias,
        }
    return {"params": params}


def lstm_params_to_flax_cells(variables: Mapping) -> list[dict]:
    """The inverse of `lstm_params_from_flax_cells`: one Flax cell parameter dict per
    layer-direction, in PyTorch's order, with `bias_ih + bias_hh` as the hidden gates'
    biases (zeros for an `LSTM(use_bias=False)`). A layer with a projection (`kernel_hr`,
    `proj_size`) has no Flax cell, and is refused by name."""
    params = variables.get("params", variables)
    layers = sorted(
        params, key=lambda name: (int(name[1:].split("_")[0]), name.endswith("_reverse"))
    )
    cells = []
    for name in layers:
        group = {k: np.asarray(v) for k, v in params[name].items()}
        if "kernel_hr" in group:
            raise ValueError(
                f"lstm_params_to_flax_cells: {name} has a projection (kernel_hr, proj_size), "
                "which Flax's LSTM cells do not have"
            )
        hidden = group["kernel_hh"].shape[0]
        bias = group.get("bias_ih", 0.0) + group.get("bias_hh", np.zeros(4 * hidden))
        blocks = range(0, 4 * hidden, hidden)
        cell: dict[str, dict[str, np.ndarray]] = {}
        for gate, start in zip(GATES, blocks, strict=True):
            cols = slice(start, start + hidden)
            cell[f"i{gate}"] = {"kernel": group["kernel_ih"][:, cols]}
            cell[f"h{gate}"] = {"kernel": group["kernel_hh"][:, cols], "bias": bias[cols]}
        cells.append(cell)
    return cells
