"""The "did you mean" hints of mistyped names: the closest name, every name a prefix
starts, none for a name close to nothing; and build_model's errors carry them."""

import pytest

from seqjax.models import build_model
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
