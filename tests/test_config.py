import dataclasses

import pytest
import yaml

from seqjax.config import config_from_dict, dump_config, load_config


def test_yaml_round_trip_reproduces_the_config():
    cfg = load_config("configs/trust.yaml", ["train.epochs=5", "optimizer.lr=3e-4"])
    assert cfg.train.epochs == 5 and cfg.optimizer.lr == 3e-4
    assert config_from_dict(yaml.safe_load(dump_config(cfg))) == cfg


def test_configs_are_frozen():
    cfg = load_config("configs/trust.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.epochs = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "train.epoch=2",
            r"unknown key train.'epoch' \(did you mean 'epochs'\?\); valid keys in train: "
            r"\['epochs'",
        ),
        ("train.zzz=2", r"unknown key train.'zzz'; valid keys in train"),  # nothing close
        ("model.hiden=3", r"unknown key model.'hiden'"),
        (
            "model.hidden_size=3",  # steel's key; trust's LSTMs are hidden_sizes
            r"unknown key model.'hidden_size' \(did you mean 'hidden_sizes'\?\)",
        ),
        ("model.name=trsut", r"model.name must be one of .*got 'trsut' \(did you mean 'trust'"),
        ("train.epochs=two", r"train.epochs: expected int, got 'two'"),
        ("train.epochs=0", r"train.epochs and train.batch_size must be >= 1"),
        ("optimizer.name=sgd", r"optimizer.name must be 'adam' or 'adamw'; got 'sgd'"),
        ("model.dropout=1.0", r"dropout must lie in \[0, 1\)"),
        ("model.lstm_backend=fast", r"backend must be one of 'auto', .*'pallas'; got 'fast'"),
        ("model.lstm_precision=max", r"precision must be None, one of 'default', .*got 'max'"),
        ("model.lstm_dtype=float16", r"lstm_dtype must be one of \('float32', 'bfloat16'\)"),
        ("data.splits=[0.5, 0.5]", r"data.splits: expected 3 values, got 2"),
        ("checkpoint.every_steps=-5", r"checkpoint.every_steps must be >= 0 \(0: off\); got -5"),
        ("trainer.epochs=3", r"unknown top-level key 'trainer' \(did you mean 'train'\?\)"),
        ("epochs=3", r"must look like section.key=value"),
    ],
)
def test_bad_config_values_are_named(override, message):
    with pytest.raises((ValueError, TypeError), match=message):
        load_config("configs/trust.yaml", [override])


@pytest.mark.parametrize("config", ["trust", "steel_standard", "trend", "hybrid"])
def test_every_systems_lstm_options_are_config_keys(config):
    """`model.lstm_backend`, `model.lstm_precision` and `model.lstm_dtype` reach every LSTM
    of the model (each one's call is recorded), and on CPU 'pallas' without the interpreter
    is refused by name. Traced only."""
    import functools

    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from seqjax.data.sources import load_splits
    from seqjax.layers import LSTM
    from seqjax.models.registry import build_model

    def traced(backend, precision="null", dtype="float32"):
        overrides = [
            f"model.lstm_backend={backend}",
            f"model.lstm_precision={precision}",
            f"model.lstm_dtype={dtype}",
            "data.size=64",
        ]
        cfg = load_config(f"configs/{config}.yaml", overrides)
        batch = load_splits(cfg.data)["train"]
        model = build_model(cfg.model_name, cfg.model)
        init = functools.partial(model.init, jax.random.key(0))
        return functools.partial(jax.eval_shape, init, batch.inputs[:2], batch.lengths[:2])

    seen = []

    def record(call, args, kwargs, context):
        if isinstance(context.module, LSTM) and context.method_name == "__call__":
            module = context.module
            seen.append((module.backend, module.precision, jnp.dtype(module.dtype).name))
        return call(*args, **kwargs)

    with nn.intercept_methods(record):
        traced("scan")()
    assert seen and set(seen) == {("scan", None, "float32")}
    seen.clear()
    with nn.intercept_methods(record):
        traced("auto", "highest", "bfloat16")()
    assert seen and set(seen) == {("auto", "highest", "bfloat16")}
    if jax.default_backend() != "gpu":
        with pytest.raises(ValueError, match="backend='pallas' cannot run here: it compiles"):
            traced("pallas")()
