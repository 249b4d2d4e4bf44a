"""Moving LSTM weights between PyTorch's `nn.LSTM` naming and seqjax's parameter tree.

Takes plain NumPy arrays (e.g. from `module.state_dict()` converted with `.numpy()`, or from
a safetensors file); seqjax itself never imports torch and never unpickles anything.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

_PARTS = {
    "weight_ih": "kernel_ih",
    "weight_hh": "kernel_hh",
    "bias_ih": "bias_ih",
    "bias_hh": "bias_hh",
    "weight_hr": "kernel_hr",  # proj_size > 0 only
}


def _torch_names(
    num_layers: int, bidirectional: bool, bias: bool, projection: bool, *, cell: bool = False
) -> list[tuple[str, str, str]]:
    """(torch name, seqjax group, seqjax leaf) for every parameter of an nn.LSTM, or with
    `cell` of an nn.LSTMCell, whose names have no layer suffix (`weight_ih`)."""
    names = []
    parts = {
        k: v
        for k, v in _PARTS.items()
        if (bias or not k.startswith("bias")) and (projection or k != "weight_hr")
    }
    for layer in range(num_layers):
        for suffix in ("", "_reverse") if bidirectional else ("",):
            for torch_part, leaf in parts.items():
                name = torch_part if cell else f"{torch_part}_l{layer}{suffix}"
                names.append((name, f"l{layer}{suffix}", leaf))
    return names


def lstm_params_from_torch(
    state_dict: Mapping[str, np.ndarray],
    *,
    num_layers: int,
    bidirectional: bool,
    bias: bool = True,
    proj_size: int = 0,
    dtype: np.typing.DTypeLike = np.float32,
) -> dict:
    """Convert an `nn.LSTM` state dict (names like `weight_ih_l0`, `bias_hh_l1_reverse`) into
    `{"params": ...}` variables for `seqjax.layers.LSTM.apply`, in `dtype` (float32, as
    the layer's default `param_dtype`; float64 for a float64 layer). `bias=False` reads an
    `nn.LSTM(bias=False)`, for `LSTM(use_bias=False)`; `proj_size=P` one with projections
    (its `weight_hr_*`), for `LSTM(proj_size=P)`.

    Raises ValueError naming any missing or unexpected key and any inconsistent shape.
    """
    expected = _torch_names(num_layers, bidirectional, bias, proj_size > 0)
    wanted = {name for name, _, _ in expected}
    projections = sorted(n for n in set(state_dict) - wanted if n.startswith("weight_hr"))
    if projections:
        found = np.shape(state_dict[projections[0]])[0]
        raise ValueError(
            f"lstm_params_from_torch: the state dict holds weight_hr_* projections, from an "
            f"nn.LSTM with proj_size > 0 ({projections[0]} has {found} rows); pass "
            f"proj_size={found}"
        )
    module = (
        f"an nn.LSTM with num_layers={num_layers}, bidirectional={bidirectional}, "
        f"bias={bias}, proj_size={proj_size}"
    )
    return _converted(state_dict, expected, "lstm_params_from_torch", module, proj_size, dtype)


def lstm_cell_params_from_torch(
    state_dict: Mapping[str, np.ndarray],
    *,
    bias: bool = True,
    dtype: np.typing.DTypeLike = np.float32,
) -> dict:
    """Convert an `nn.LSTMCell` state dict (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`)
    into `{"params": ...}` variables for `seqjax.layers.LSTMCell`, which are a one-layer
    `LSTM`'s. Raises ValueError naming any missing or unexpected key and any bad shape."""
    expected = _torch_names(1, False, bias, False, cell=True)
    module = f"an nn.LSTMCell with bias={bias}"
    return _converted(state_dict, expected, "lstm_cell_params_from_torch", module, 0, dtype)


def _converted(
    state_dict: Mapping[str, np.ndarray],
    expected: list[tuple[str, str, str]],
    who: str,
    module: str,
    proj_size: int,
    dtype: np.typing.DTypeLike,
) -> dict:
    """`{"params": ...}` from the `expected` (torch name, group, leaf) entries of
    `state_dict`, checked against `module` (as the error messages of `who` name it):
    every key there and no other, and every shape consistent with the hidden size that the
    first `weight_hh` gives."""
    wanted = {name for name, _, _ in expected}
    missing = sorted(wanted - set(state_dict))
    extra = sorted(set(state_dict) - wanted)
    if missing or extra:
        raise ValueError(
            f"{who}: state dict does not match {module}; missing {missing}, unexpected {extra}"
        )
    first_hh = next(name for name, _, leaf in expected if leaf == "kernel_hh")
    hidden = np.shape(state_dict[first_hh])[0] // 4
    if proj_size and not 0 < proj_size < hidden:
        raise ValueError(
            f"{who}: proj_size must lie in (0, {hidden}), the hidden size {first_hh} gives; "
            f"got {proj_size}"
        )
    params: dict[str, dict[str, np.ndarray]] = {}
    for name, group, leaf in expected:
        value = np.asarray(state_dict[name], dtype=dtype)
        if name.startswith("weight_hr"):
            if value.shape != (proj_size, hidden):
                raise ValueError(
                    f"{who}: {name} must have shape ({proj_size}, {hidden}); got {value.shape}"
                )
            value = value.T  # (P, H) in PyTorch; (H, P) here
        elif name.startswith("weight"):
            width = proj_size or hidden
            if (
                value.ndim != 2
                or value.shape[0] != 4 * hidden
                or (name.startswith("weight_hh") and value.shape[1] != width)
            ):
                shape = f"(4*{hidden}, {width})" if name.startswith("weight_hh") else "(4*H, in)"
                raise ValueError(
                    f"{who}: {name} must have shape {shape}, H = {hidden}; got {value.shape}"
                )
            value = value.T  # PyTorch stores (4H, in); Flax kernels are (in, 4H).
        elif value.shape != (4 * hidden,):
            raise ValueError(f"{who}: {name} must have shape ({4 * hidden},); got {value.shape}")
        params.setdefault(group, {})[leaf] = np.ascontiguousarray(value)
    return {"params": params}


def lstm_params_to_torch(variables: Mapping) -> dict[str, np.ndarray]:
    """The inverse of `lstm_params_from_torch`: seqjax LSTM variables to nn.LSTM names."""
    params = variables.get("params", variables)
    inverse = {leaf: torch_part for torch_part, leaf in _PARTS.items()}
    out = {}
    for group, leaves in params.items():
        layer_suffix = group[1:]  # "0" or "0_reverse"
        for leaf, value in leaves.items():
            value = np.asarray(value)
            out[f"{inverse[leaf]}_l{layer_suffix}"] = value.T if value.ndim == 2 else value
    return out


def lstm_cell_params_to_torch(variables: Mapping) -> dict[str, np.ndarray]:
    """The inverse of `lstm_cell_params_from_torch`: `LSTMCell` variables to nn.LSTMCell
    names."""
    return {k.removesuffix("_l0"): v for k, v in lstm_params_to_torch(variables).items()}
