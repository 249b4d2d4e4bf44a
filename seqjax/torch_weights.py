"""Whole-model weights to and from PyTorch state-dict names, through safetensors files.

A safetensors file is a JSON header plus raw little-endian buffers: reading one executes
nothing, unlike a pickled `torch.save` checkpoint, which seqjax never opens.

Names follow from the seqjax parameter tree, so every model is covered without a table per
model: a module path `a/b` is the PyTorch module `a.b`; Dense and LayerNorm leaves are
`weight` (kernels transposed: Dense (in, out) -> (out, in), Conv (k, in, out) ->
(out, in, k)) and `bias`; a bare parameter keeps its name; BatchNorm's running
statistics are `running_mean` / `running_var` (PyTorch's `num_batches_tracked` is accepted
and ignored); an LSTM layer group `l{k}[_reverse]` gives nn.LSTM's `weight_ih_l{k}` etc.
One alias per model covers a stacked nn.LSTM where seqjax keeps separate layers: steel's
`lstm_{k}` (one layer each, so a layer can be frozen or returned) is PyTorch's single
`lstm` with `num_layers`; the trust seed's `lstm1..3` and `fc` match as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from seqjax.io import atomic_write_bytes

_LSTM_LEAVES = {
    "kernel_ih": "weight_ih",
    "kernel_hh": "weight_hh",
    "bias_ih": "bias_ih",
    "bias_hh": "bias_hh",
    "kernel_hr": "weight_hr",  # an LSTM with proj_size
}
_LEAVES = {"kernel": "weight", "scale": "weight", "bias": "bias"}
_STATS = {"mean": "running_mean", "var": "running_var"}
_IGNORED = re.compile(r"(^|\.)num_batches_tracked$")
# seqjax path prefix pattern -> PyTorch name template, per model (see the module docstring).
_ALIASES = {"steel": [(re.compile(r"^lstm_(\d+)\.(\w+)_l0(_reverse)?$"), r"lstm.\2_l\1\3")]}


def _torch_name(collection: str, path: tuple[str, ...]) -> tuple[str, bool]:
    """(PyTorch name, transpose?) of the seqjax leaf at `collection`/`path`."""
    *modules, leaf = path
    lstm_group = re.fullmatch(r"l(\d+)(_reverse)?", modules[-1]) if modules else None
    if lstm_group and leaf in _LSTM_LEAVES:
        layer, reverse = lstm_group.groups()
        name = f"{_LSTM_LEAVES[leaf]}_l{layer}{reverse or ''}"
        return ".".join([*modules[:-1], name]), leaf.startswith("kernel")
    table = _STATS if collection == "batch_stats" else _LEAVES
    # Other leaves (a bare nn.Parameter such as hybrid's `combiner`) keep their name.
    return ".".join([*modules, table.get(leaf, leaf)]), leaf == "kernel"


def torch_layout(variables: Mapping, model_name: str) -> dict[str, tuple[str, tuple, bool]]:
    """PyTorch name -> (collection, seqjax path, transpose?) for every array in `variables`."""
    layout = {}
    for collection, tree in variables.items():
        for path, _ in _leaves(tree):
            name, transpose = _torch_name(collection, path)
            for pattern, template in _ALIASES.get(model_name, []):
                name = pattern.sub(template, name)
            layout[name] = (collection, path, transpose)
    return layout


def _leaves(tree: Mapping, prefix: tuple = ()):
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def to_torch_state_dict(variables: Mapping, model_name: str) -> dict[str, np.ndarray]:
    """seqjax variables -> {PyTorch name: float32 array}, ready for `load_state_dict`."""
    out = {}
    for name, (collection, path, transpose) in torch_layout(variables, model_name).items():
        value = np.asarray(_get(variables[collection], path), np.float32)
        out[name] = np.ascontiguousarray(value.T if transpose else value)
    return out


def from_torch_state_dict(
    tensors: Mapping[str, np.ndarray], template: Mapping, model_name: str
) -> dict:
    """{PyTorch name: array} -> variables shaped like `template` (e.g. `model.init(...)` or
    its `jax.eval_shape`). Every missing, unexpected or mis-shaped tensor is named."""
    layout = torch_layout(template, model_name)
    given = {k for k in tensors if not _IGNORED.search(k)}
    missing, extra = sorted(set(layout) - given), sorted(given - set(layout))
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if extra:
        problems.append(f"unexpected {extra}")
    out: dict = {}
    for name, (collection, path, transpose) in layout.items():
        if name not in tensors:
            continue
        value = np.asarray(tensors[name])
        if not np.issubdtype(value.dtype, np.floating):
            problems.append(f"{name} has dtype {value.dtype}, expected a float")
            continue
        value = value.T if transpose else value
        want = tuple(np.shape(_get(template[collection], path)))
        if value.shape != want:
            shown = want[::-1] if transpose else want
            problems.append(
                f"{name} has shape {tuple(np.shape(tensors[name]))}, expected {shown} "
                f"(seqjax {collection}/{'/'.join(path)})"
            )
            continue
        _set(out.setdefault(collection, {}), path, np.ascontiguousarray(value, np.float32))
    if problems:
        raise ValueError(f"PyTorch weights do not fit model {model_name!r}: " + "; ".join(problems))
    return out


def _get(tree: Mapping, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def load_safetensors(path: str) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as NumPy arrays (no code is executed)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    with open(path, "rb") as f:
        data = f.read()
    try:
        return load(data)
    except (SafetensorError, ValueError) as err:
        raise ValueError(f"{path!r} is not a readable safetensors file: {err}") from None


def save_safetensors(tensors: Mapping[str, np.ndarray], path: str) -> None:
    """Write `tensors` atomically: a failed write leaves no half-written file."""
    from safetensors.numpy import save

    atomic_write_bytes(path, save({k: np.ascontiguousarray(v) for k, v in tensors.items()}))
