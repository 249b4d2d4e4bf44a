"""The "did you mean" hints of mistyped names: the closest name, every name a prefix
starts, none for a name close to nothing; and build_model's errors, the layers', the
models' and the configs' constructors carry them."""

import jax
import jax.numpy as jnp
import pytest

from seqjax.config import TrainConfig
from seqjax.layers import LSTM, MultiHeadAttentionPool
from seqjax.models import build_model
from seqjax.models.steel import SteelConfig, SteelDefectLSTM
from seqjax.suggest import did_you_mean

CONFIGS = ["hybrid", "steel_deep", "steel_standard", "trend", "trust"]


@pytest.mark.parametrize(
    "name,hint",
    [
        ("trsut", " (did you mean 'trust'?)"),
        ("steel", " (did you mean one of 'steel_deep', 'steel_standard'?)"),
        ("steel_d", " (did you mean 'steel_deep'?)"),  # a prefix of one name
        ("zzz", ""),
        ("", ""),
    ],
)
def test_the_hint_names_the_closest_or_every_started_name(name, hint):
    assert did_you_mean(name, CONFIGS) == hint


def test_build_model_names_the_model_or_key_meant():
    with pytest.raises(ValueError, match=r"unknown model 'stel' \(did you mean 'steel'\?\)"):
        build_model("stel")
    with pytest.raises(
        ValueError, match=r"\['hiden'\] for model 'steel' \(did you mean 'hidden_size'"
    ):
        build_model("steel", hiden=3)


@pytest.mark.parametrize(
    "build,message",
    [
        (
            lambda: LSTM(8, num_layer=2),
            r"^LSTM has no option 'num_layer' \(did you mean 'num_layers'",
        ),
        (lambda: LSTM(8, nme="x"), r"^LSTM has no option 'nme' \(did you mean 'name'\?\); its"),
        (
            lambda: MultiHeadAttentionPool(num_head=2),
            r"no option 'num_head' \(did you mean 'num_heads'",
        ),
        (lambda: SteelDefectLSTM(cfg=SteelConfig()), r"no option 'cfg' \(did you mean 'config'"),
        (lambda: SteelConfig(hiden_size=3), r"no option 'hiden_size' \(did you mean 'hidden_size'"),
        (
            lambda: TrainConfig(epoch=3),
            r"^TrainConfig has no option 'epoch' \(did you mean 'epochs'",
        ),
        (
            lambda: LSTM(8, zzz=1),
            r"^LSTM has no option 'zzz'; its options: hidden_size, num_layers,",
        ),
    ],
)
def test_a_mistyped_constructor_option_names_the_one_meant(build, message):
    with pytest.raises(TypeError, match=message):
        build()


def test_the_hinted_constructors_still_build_clone_and_run():
    """The check wraps the generated `__init__`: Flax's clone (which every `apply` and
    transform uses), keyword and positional options and a subclass's own fields still work."""

    class Wider(LSTM):
        extra: int = 0

    x = jnp.ones((2, 3, 4))  # (B, T, F)
    for layer in (LSTM(5, 2, name="enc"), LSTM(hidden_size=5, num_layers=2), Wider(5, extra=1)):
        params = layer.init(jax.random.key(0), x)
        outputs, _ = layer.apply(params, x)
        assert outputs.shape == (2, 3, 5)
    assert LSTM(5, 2).clone(num_layers=1).num_layers == 1
    assert SteelConfig(hidden_size=64).hidden_size == 64
