"""A "did you mean" hint for a mistyped name: the error for `train.epoch=3` or `--config
trsut` then names the key or config the user meant, not only the list to search."""

import dataclasses
import difflib
import functools
from collections.abc import Iterable
from typing import TypeVar

C = TypeVar("C", bound=type)


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """' (did you mean 'epochs'?)' for the closest valid name, or '' when none is close.

    A name that starts several valid ones (`steel` of `steel_deep`, `steel_standard`, ...)
    names them all, since closeness alone would pick one of them by its length."""
    valid = [str(v) for v in valid]
    started = [v for v in valid if v.startswith(str(name)) and v != name] if name else []
    if len(started) > 1:
        return f" (did you mean one of {', '.join(map(repr, started))}?)"
    close = started or difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def option_names(cls: type) -> list[str]:
    """The init options of dataclass `cls` in its `__init__`'s order: positional ones first,
    then keyword-only ones, such as the LSTM options every system's config inherits
    (`dataclasses.fields` would put a base class's fields first)."""
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    return [f.name for f in sorted(fields, key=lambda f: f.kw_only is True)]


def names_unknown_options(cls: C) -> C:
    """Makes `cls(**options)` name a mistyped option and the one meant, for a dataclass or
    a Flax module: `LSTM(128, num_layer=2)` then says "LSTM has no option 'num_layer' (did
    you mean 'num_layers'?)" instead of only the generated `__init__`'s "unexpected keyword
    argument". A subclass gets a generated `__init__` of its own, without the hint."""
    generated = cls.__init__  # type: ignore[misc]
    options = option_names(cls)
    shown = [name for name in options if name not in ("parent", "name")]  # Flax's own

    @functools.wraps(generated)
    def __init__(self, *args, **kwargs):
        for key in kwargs:
            if key not in options:
                raise TypeError(
                    f"{cls.__name__} has no option {key!r}{did_you_mean(key, options)}; "
                    f"its options: {', '.join(shown)}"
                )
        generated(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]
    return cls
