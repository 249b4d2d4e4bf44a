"""A "did you mean" hint for a mistyped name: the error for `train.epoch=3` or `--config
trsut` then names the key or config the user meant, not only the list to search."""

import difflib
from collections.abc import Iterable


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
