import dataclasses

import pytest
import yaml

from seqjax.config import config_from_dict, dump_config, load_config


def test_yaml_round_trip_reproduces_the_config():
    cfg = load_config("configs/trust.yaml", ["train.epochs=5", "optimizer.lr=3e-4"])
    assert cfg.train.epochs == 5 and cfg.optimizer.lr == 3e-4
    assert config_from_dict(yaml.safe_load(dump_config(cfg))) == cfg


def test_an_empty_name_option_given_as_null_is_unset():
    """`--set data.sample_weights=` (YAML's null) leaves the option off, as its default ""
    does; an option without such a default still names the null."""
    cfg = load_config("steel_lightweight", ["data.sample_weights=", "data.groups="])
    assert cfg.data.sample_weights == "" and cfg.data.groups == ""
    with pytest.raises(TypeError, match=r"data.source: expected str, got None"):
        load_config("steel_lightweight", ["data.source="])


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
        (
            "model.lstm_fused_directions=gpu",
            r"model.lstm_fused_directions: expected bool, got 'gpu'",
        ),
        (
            "model.lstm_pallas_layout=cols",
            r"lstm_pallas_layout must be one of \['rows', 'units'\]; got 'cols'",
        ),
        ("data.splits=[0.5, 0.5]", r"data.splits: expected 3 values, got 2"),
        ("checkpoint.every_steps=-5", r"checkpoint.every_steps must be >= 0 \(0: off\); got -5"),
        ("train.min_epochs=-1", r"train.min_epochs must be >= 0 \(0: off\); got -1"),
        (
            "optimizer.plateau_after=-2",
            r"optimizer.plateau_after must be >= 0 \(0: off\); got -2",
        ),
        ("trainer.epochs=3", r"unknown top-level key 'trainer' \(did you mean 'train'\?\)"),
        ("epochs=3", r"must look like section.key=value"),
        # every range check passes a NaN, which then stopped the run at its second step
        ("optimizer.lr=nan", r"optimizer.lr: expected a finite number, got nan"),
        ("optimizer.lr=.inf", r"optimizer.lr: expected a finite number, got inf"),
        ("train.min_delta=-.inf", r"train.min_delta: expected a finite number, got -inf"),
        (  # before, PyYAML's own error, as a traceback
            "model.hidden_sizes=[256, 128",
            r"^override 'model.hidden_sizes=\[256, 128': its value '\[256, 128' is not valid YAML "
            r"\(line 1, column 10: "
            r"expected ',' or '\]', but got '<stream end>'\)$",
        ),
    ],
)
def test_bad_config_values_are_named(override, message):
    with pytest.raises((ValueError, TypeError), match=message):
        load_config("configs/trust.yaml", [override])


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "model:\n  name: trust\ntrain: [1, 2\n",
            r"is not valid YAML \(line 4, column 1: expected",
        ),
        (
            "- model\n- train\n",
            r"must be a mapping of sections \(model:, train:, ...\); got a list",
        ),
        ("model: 3\n", r"^model: expected a mapping of keys, got 3$"),
        ("model:\n  name: trust\ntrain: 5\n", r"^train: expected a mapping of keys, got 5$"),
    ],
)
def test_a_config_file_that_is_not_a_mapping_of_sections_is_named(tmp_path, text, message):
    """Before, these ended in PyYAML's traceback or "'int' object is not iterable"."""
    (tmp_path / "bad.yaml").write_text(text)
    for overrides in ([], ["train.epochs=2"]):
        with pytest.raises((ValueError, TypeError), match=message):
            load_config(str(tmp_path / "bad.yaml"), overrides)


@pytest.mark.parametrize("config", ["trust", "steel_standard", "trend", "hybrid"])
def test_every_systems_lstm_options_are_config_keys(config):
    """`model.lstm_backend`, `model.lstm_precision`, `model.lstm_dtype`,
    `model.lstm_fused_directions` and `model.lstm_pallas_layout` reach every LSTM of the
    model (each one's call is recorded), and on CPU 'pallas' without the interpreter is
    refused by name. Traced only."""
    import functools

    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from seqjax.data.sources import load_splits
    from seqjax.layers import LSTM
    from seqjax.models.registry import build_model

    def traced(backend, precision="null", dtype="float32", fused="null", layout="rows"):
        overrides = [
            f"model.lstm_backend={backend}",
            f"model.lstm_precision={precision}",
            f"model.lstm_dtype={dtype}",
            f"model.lstm_fused_directions={fused}",
            f"model.lstm_pallas_layout={layout}",
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
            options = (module.precision, jnp.dtype(module.dtype).name, module.fused_directions)
            seen.append((module.backend, *options, module.pallas_layout))
        return call(*args, **kwargs)

    with nn.intercept_methods(record):
        traced("scan")()
    assert seen and set(seen) == {("scan", None, "float32", None, "rows")}
    seen.clear()
    with nn.intercept_methods(record):
        traced("auto", "highest", "bfloat16", "false", "units")()
    assert seen and set(seen) == {("auto", "highest", "bfloat16", False, "units")}
    if jax.default_backend() != "gpu":
        with pytest.raises(ValueError, match="backend='pallas' cannot run here: it compiles"):
            traced("pallas")()


def test_every_model_config_carries_the_lstm_options_after_its_own():
    """Each model's config inherits the LSTM options (`LSTMOptions`) as keyword-only
    fields: its own fields keep their positions, and its own keys come first in the
    saved YAML and in the "did you mean" list."""
    from seqjax.models.lstm_options import LSTMOptions
    from seqjax.models.registry import MODELS
    from seqjax.models.steel import SteelConfig

    lstm_keys = [f.name for f in dataclasses.fields(LSTMOptions)]
    for name, (_, config_cls) in MODELS.items():
        assert issubclass(config_cls, LSTMOptions), name
    cfg = SteelConfig(7, 96)
    assert (cfg.features, cfg.hidden_size, cfg.lstm_backend) == (7, 96, "auto")
    with pytest.raises(ValueError, match="lstm_backend|backend must be one of"):
        SteelConfig(lstm_backend="cuda")
    with pytest.raises(TypeError, match=r"options: features, hidden_size, .*, lstm_backend"):
        SteelConfig(lstm_backnd="scan")  # type: ignore[call-arg]
    saved = list(yaml.safe_load(dump_config(load_config("steel_lightweight")))["model"])
    assert saved[:2] == ["name", "features"] and saved[-len(lstm_keys) :] == lstm_keys
