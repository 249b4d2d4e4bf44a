"""Experiment configs: typed frozen dataclasses, one per concern, loaded from YAML.

Every YAML key maps to a dataclass field. An unknown key, a wrong type or an
out-of-range value fails at load time naming the key and what is allowed, before any data
is generated or anything is written. Variants are derived with `dataclasses.replace`, and
`--set section.key=value` overrides are parsed as YAML scalars.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from seqjax.class_weights import check_class_weights_option
from seqjax.config_files import config_file
from seqjax.data.sampler import check_sampler_option
from seqjax.data.sources import (
    DEFAULT_FRACTIONS,
    check_folds_option,
    check_groups_option,
    check_sample_weights_option,
    check_source,
    check_split_option,
)
from seqjax.models.registry import MODELS
from seqjax.suggest import did_you_mean, names_unknown_options, option_names
from seqjax.train.profiling import check_profile_steps


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "trust"  # a generator name, or aeon:NAME, npz:PATH, csv:PATH
    size: int = 6000
    seed: int = 0
    splits: tuple[float, float, float] = DEFAULT_FRACTIONS
    # users' data: "auto" (integer targets 0..K-1 are classes, others values), "classes",
    # or "values" (regression, integers too)
    targets: str = "auto"
    # users' npz/csv data: the npz array or CSV column (constant within a sequence) holding
    # each sequence's weight in the loss, which is then a mean weighted by it (train, val
    # and test; not the metrics). "": every sequence weighs 1.
    sample_weights: str = ""
    # users' npz/csv data: "random", or "ordered": in the file's order, the first fraction
    # trains (time-ordered data: no future in training); `gap` sequences after each cut
    # are left out (overlapping windows of one series would share steps across it).
    # "stratified": each class cut by the fractions on its own (users' class labels).
    split: str = "random"
    gap: int = 0
    # users' npz/csv data, cross-validation: K >= 3 folds replace `splits`; fold `fold`
    # tests and the next one validates (`seqjax cv` trains every fold); an ordered split's
    # folds walk forward in time (`fold_indices`). 0: no folds.
    folds: int = 0
    fold: int = 0
    # users' npz/csv data: the npz array or CSV column (constant within a sequence) naming
    # each sequence's group (a subject, a machine, a series); a random split or the folds
    # keep every group whole in one split. "": no groups.
    groups: str = ""

    def __post_init__(self):
        check_source(self.source)
        check_sample_weights_option(self.sample_weights, self.source)
        check_split_option(self.split, self.gap, self.source)
        check_groups_option(self.groups, self.source, self.split, self.sample_weights)
        check_folds_option(self.folds, self.fold, self.splits, self.source)
        if self.targets not in ("auto", "classes", "values"):
            raise ValueError(
                f"data.targets must be 'auto', 'classes' or 'values'; got {self.targets!r}"
            )
        if self.size < 10:
            raise ValueError(f"data.size must be >= 10; got {self.size}")
        if abs(sum(self.splits) - 1.0) > 1e-6 or min(self.splits) <= 0:
            raise ValueError(
                f"data.splits must be 3 positive fractions summing to 1; got {self.splits}"
            )


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"  # adam: L2 added to the gradient as torch.optim.Adam; adamw: decoupled
    lr: float = 1e-3
    weight_decay: float = 1e-5
    clip_norm: float = 1.0  # global-norm clip; 0 disables
    plateau_factor: float = 0.5  # reduce-on-plateau: lr *= factor after `plateau_patience`
    plateau_patience: int = 5  # epochs without improvement of the monitored metric; 0 disables
    # Epochs 1..N count no epoch towards `plateau_patience` (an improvement still sets the
    # level to beat). Why: a model on its starting plateau (monitor at chance) leaves it
    # after a number of epochs that varies with the seed, and halving the rate while it
    # waits makes it later or never (steel_standard, train.seed=1). 0: off.
    plateau_after: int = 0
    schedule: str = "constant"  # or "warmup_cosine"
    warmup_steps: int = 0
    decay_steps: int = 0  # warmup_cosine: steps of warmup + decay; 0 = the whole run
    end_lr_factor: float = 0.0  # warmup_cosine: final lr = lr * end_lr_factor
    freeze: tuple[str, ...] = ()  # parameter path prefixes kept fixed, e.g. "lstm1/"

    def __post_init__(self):
        if self.name not in ("adam", "adamw"):
            raise ValueError(f"optimizer.name must be 'adam' or 'adamw'; got {self.name!r}")
        if self.schedule not in ("constant", "warmup_cosine"):
            raise ValueError(
                f"optimizer.schedule must be 'constant' or 'warmup_cosine'; got {self.schedule!r}"
            )
        if self.warmup_steps < 0 or self.decay_steps < 0:
            raise ValueError("optimizer.warmup_steps and optimizer.decay_steps must be >= 0")
        if not 0 <= self.end_lr_factor <= 1:
            raise ValueError(
                f"optimizer.end_lr_factor must lie in [0, 1]; got {self.end_lr_factor}"
            )
        if self.lr <= 0:
            raise ValueError(f"optimizer.lr must be > 0; got {self.lr}")
        if self.weight_decay < 0 or self.clip_norm < 0:
            raise ValueError("optimizer.weight_decay and optimizer.clip_norm must be >= 0")
        if self.plateau_after < 0:
            raise ValueError(
                f"optimizer.plateau_after must be >= 0 (0: off); got {self.plateau_after}"
            )
        if not 0 < self.plateau_factor <= 1:
            raise ValueError(
                f"optimizer.plateau_factor must lie in (0, 1]; got {self.plateau_factor}"
            )


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 32
    seed: int = 0
    loss: str = "binary_cross_entropy"
    # binary_cross_entropy only: each positive's loss counts this many times, as PyTorch's
    # BCEWithLogitsLoss(pos_weight=...); for rare positives, n_negative / n_positive of the
    # training split. It weighs the validation and test losses too, not their metrics.
    pos_weight: float = 1.0
    # A classifier's loss: one weight per class, multiplying each example's term (the mean
    # stays over examples), or "balanced": n / (K * n_k) from the training split, whose
    # numbers the run saves in its config.yaml. null: every class 1. As pos_weight, it
    # weighs the losses (validation and test too), not the metrics. seqjax/class_weights.py
    class_weights: tuple[float, ...] | str | None = None
    # "shuffle": each epoch every training example once, in random order; "balanced" (a
    # classifier): N examples drawn with replacement so that each class is equally common
    # in the batches, as PyTorch's WeightedRandomSampler with weights 1 / n_class; not
    # beside class_weights or pos_weight. seqjax/data/sampler.py
    sampler: str = "shuffle"
    monitor: str = "val_loss"  # early stopping and plateau metric
    # Which way `monitor` improves: "min", "max", or "auto", taken from the metric's name
    # (a loss, MSE, RMSE or MAE lower; an accuracy, AUC, F1, precision, recall or
    # correlation higher), so `--set train.monitor=val_accuracy` alone is enough.
    mode: str = "auto"
    patience: int = 10  # early stopping; 0 disables
    # Early stopping waits for this epoch, whatever `patience` says. Why: a model on its
    # starting plateau (monitor at chance) may leave it later than `patience` epochs after
    # its first best; steel_lightweight on one of six seeds left it at epoch 13. 0: off.
    min_epochs: int = 0
    min_delta: float = 0.0
    tensorboard: bool = False  # also write TensorBoard event files (needs tensorboardX)
    plots: bool = True  # loss and metric curves as PNG at the end
    # A non-finite loss or gradient: "stop" the run naming the step (the last good
    # checkpoint stays), or "skip" that update and count it in the history.
    nonfinite: str = "stop"
    # On an NVIDIA GPU, record the steps' loops into CUDA graphs (seqjax/loop_graphs.py);
    # not yet measured there, so off; other platforms ignore it.
    loop_graphs: bool = False
    # Batch examples of similar lengths and pad each batch's time axis only to the next
    # multiple of this many steps (seqjax/data/buckets.py): fewer loop steps on a GPU or
    # TPU, one compiled shape per multiple. 0 pads every batch to the data's length.
    bucket_width: int = 0
    # [first, last]: trace these global steps (1-based) with jax.profiler into
    # RUN_DIR/profile (seqjax/train/profiling.py); [0, 0] traces nothing.
    profile_steps: tuple[int, int] = (0, 0)
    # > 1: form each step's gradient from this many micro-batches of the batch, one after
    # another (seqjax/train/step.py), for 1/k of the activation memory; the same update to
    # float rounding, except where dropout (other masks) or BatchNorm (statistics per
    # micro-batch) draw on the batch. batch_size must split into k per device.
    micro_batches: int = 1

    def __post_init__(self):
        if self.micro_batches < 1:
            raise ValueError(f"train.micro_batches must be >= 1; got {self.micro_batches}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                "train.epochs and train.batch_size must be >= 1; got "
                f"{self.epochs}, {self.batch_size}"
            )
        if self.min_epochs < 0:
            raise ValueError(f"train.min_epochs must be >= 0 (0: off); got {self.min_epochs}")
        if not self.pos_weight > 0:
            raise ValueError(f"train.pos_weight must be > 0; got {self.pos_weight}")
        if self.pos_weight != 1.0 and self.loss != "binary_cross_entropy":
            raise ValueError(
                f"train.pos_weight weighs the positives of loss binary_cross_entropy; "
                f"train.loss {self.loss!r} has none (got pos_weight {self.pos_weight})"
            )
        check_class_weights_option(self.class_weights, self.loss, self.pos_weight)
        check_sampler_option(self.sampler, self.loss, self.class_weights, self.pos_weight)
        if self.mode not in ("auto", "min", "max"):
            raise ValueError(f"train.mode must be 'auto', 'min' or 'max'; got {self.mode!r}")
        if self.nonfinite not in ("stop", "skip"):
            raise ValueError(f"train.nonfinite must be 'stop' or 'skip'; got {self.nonfinite!r}")
        if self.bucket_width < 0:
            raise ValueError(f"train.bucket_width must be >= 0 (0: off); got {self.bucket_width}")
        check_profile_steps(self.profile_steps)


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    enabled: bool = True
    keep_latest: int = 2  # plus the best by train.monitor, always kept
    async_save: bool = True
    # > 0: also save the running epoch every this many steps (a SIGKILL then loses fewer;
    # a SIGTERM or Ctrl-C saves its step anyway): seqjax/train/in_epoch.py. 0: off.
    every_steps: int = 0

    def __post_init__(self):
        if self.keep_latest < 1:
            raise ValueError(f"checkpoint.keep_latest must be >= 1; got {self.keep_latest}")
        if self.every_steps < 0:
            raise ValueError(
                f"checkpoint.every_steps must be >= 0 (0: off); got {self.every_steps}"
            )


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class MeshConfig:
    num_devices: int = 0  # devices on the `data` axis; 0 = all
    # > 0: XLA's CPU client shows the CPU as this many devices (e.g. one per core), so the
    # data-parallel mesh runs a shard per core; 0: JAX's default, one CPU device. See
    # `seqjax.train.sharding.use_cpu_devices` for why and when it pays.
    cpu_devices: int = 0

    def __post_init__(self):
        if self.num_devices < 0 or self.cpu_devices < 0:
            raise ValueError(
                f"mesh.num_devices and mesh.cpu_devices must be >= 0; got {self.num_devices}, "
                f"{self.cpu_devices}"
            )


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class HostConfig:
    # Keep freed host memory in the process (seqjax/host_memory.py): XLA's CPU calls on long
    # sequences then stop faulting their temporaries in again (the steel configs' train
    # steps 1.37-1.38x on 2 cores, the hybrid's 1.19x: `python -m benchmarks.config_ab`),
    # while short calls, which fault nothing, lose to the one malloc arena's lock (trust's
    # stack 0.87x; batch-1 inference 0.70-1.01x). Linux/glibc only; elsewhere it is ignored.
    reuse_freed_memory: bool = False


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    model_name: str
    model: Any  # the model's own config dataclass, e.g. TrustConfig
    data: DataConfig = DataConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    mesh: MeshConfig = MeshConfig()
    host: HostConfig = HostConfig()


SECTIONS = {
    "data": DataConfig,
    "optimizer": OptimizerConfig,
    "train": TrainConfig,
    "checkpoint": CheckpointConfig,
    "mesh": MeshConfig,
    "host": HostConfig,
}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against the field's type hint; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            if option is type(None) and value is None:
                return None
            try:
                return _coerce(value, option, key)
            except (TypeError, ValueError) as e:
                errors.append((option, e))
        # one option's own words ("expected int, got 'x'"), or a list's own problem
        # (`[1, .nan]`: "expected a finite number"), say more than "matches none of"
        errors = [(option, e) for option, e in errors if option is not type(None)]
        if len(errors) == 1:
            raise errors[0][1]
        for option, error in errors:
            if typing.get_origin(option) is tuple and not isinstance(value, str):
                raise error
        raise TypeError(f"{key}: {value!r} matches none of {hint}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise TypeError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ValueError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        # PyYAML reads "3e-4" (no dot) as a string; accept it when it is a number.
        try:
            value = float(value)
        except ValueError:
            raise TypeError(f"{key}: expected float, got {value!r}") from None
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        # every range check passes a NaN (all its comparisons are false): refuse it here
        raise ValueError(f"{key}: expected a finite number, got {value!r}")
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise TypeError(f"{key}: expected {hint.__name__}, got {value!r}")
        return value
    if hint is Any:
        return value
    raise TypeError(f"{key}: unsupported field type {hint}")


def build_dataclass(cls: type, values: Mapping[str, Any], prefix: str):
    """Instantiate `cls` from a mapping, failing on unknown keys and wrong types."""
    if not isinstance(values, Mapping):
        raise TypeError(f"{prefix}: expected a mapping of keys, got {values!r}")
    hints = typing.get_type_hints(cls)
    valid = option_names(cls)
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown key {prefix}.{unknown[0]!r}{did_you_mean(unknown[0], valid)}; valid keys "
            f"in {prefix}: {valid}"
        )
    off = {f.name for f in dataclasses.fields(cls) if hints[f.name] is str and f.default == ""}
    kwargs = {
        # `key:` in YAML, or `--set key=`, is null: for a name that is "" when unset
        # (data.sample_weights, data.groups), that is unset, not a type error
        k: "" if v is None and k in off else _coerce(v, hints[k], f"{prefix}.{k}")
        for k, v in values.items()
    }
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ValueError(f"{prefix}: {e}") from None


def config_from_dict(raw: Mapping[str, Any]) -> ExperimentConfig:
    raw = dict(raw)
    allowed = ["model", *SECTIONS]
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown top-level key {unknown[0]!r}{did_you_mean(unknown[0], allowed)}; valid "
            f"keys: {allowed}"
        )
    model_raw = dict(raw.get("model") or {})
    name = model_raw.pop("name", None)
    if name not in MODELS:
        raise ValueError(
            f"model.name must be one of {sorted(MODELS)}; got {name!r}{did_you_mean(name, MODELS)}"
        )
    model = build_dataclass(MODELS[name][1], model_raw, "model")
    sections = {s: build_dataclass(cls, raw.get(s) or {}, s) for s, cls in SECTIONS.items()}
    return ExperimentConfig(model_name=name, model=model, **sections)


def config_to_dict(cfg: ExperimentConfig) -> dict:
    """Plain dict (lists for tuples) that `config_from_dict` turns back into `cfg`."""

    def plain(obj):
        d = dataclasses.asdict(obj)  # in option_names' order: a model's own keys first
        return {k: list(d[k]) if isinstance(d[k], tuple) else d[k] for k in option_names(type(obj))}

    out = {"model": {"name": cfg.model_name, **plain(cfg.model)}}
    out.update({s: plain(getattr(cfg, s)) for s in SECTIONS})
    return out


def apply_overrides(raw: Mapping, overrides: Sequence[str]) -> dict:
    """Apply `section.key=value` strings (values parsed as YAML) to a raw config dict."""
    for section, values in raw.items():
        if values is not None and not isinstance(values, Mapping):
            raise TypeError(f"{section}: expected a mapping of keys, got {values!r}")
    raw = {k: dict(v or {}) for k, v in raw.items()}
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"override {item!r} must look like section.key=value")
        path, value = item.split("=", 1)
        section, key = path.split(".", 1)
        raw.setdefault(section, {})[key] = _yaml(value, f"override {item!r}: its value {value!r}")
    return raw


def _yaml(text: str, where: str) -> Any:
    """`text` parsed as YAML; a syntax error is named with `where` and its line, in one
    line (PyYAML's own message spans several, with a caret under the column)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{where} is not valid YAML ({at}{problem})") from None


def load_config(path: str, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The config in the YAML file `path`, or in the shipped config of that name ("trust":
    `seqjax.config_files`), with `section.key=value` overrides."""
    file = config_file(path)
    with open(file, encoding="utf-8") as f:
        raw = _yaml(f.read(), f"config {file!r}") or {}
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"config {file!r} must be a mapping of sections (model:, train:, ...); "
            f"got a {type(raw).__name__}"
        )
    return config_from_dict(apply_overrides(raw, overrides))


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
