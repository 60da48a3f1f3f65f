"""dse's one exception and its did-you-mean helper: the bottom of the package (imports nothing of dse)."""
from __future__ import annotations


class DseError(ValueError):
    """Bad input: the message is one line naming the offending key and what is allowed."""


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known`` to a misspelt ``name``, or an empty string."""
    import difflib

    known = [str(k) for k in known]
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    if not close and "." in str(name):  # a dotted path: match its last part alone too
        last = str(name).rsplit(".", 1)[1]
        close = [k for k in known if k.rsplit(".", 1)[-1] in difflib.get_close_matches(last, [
            k.rsplit(".", 1)[-1] for k in known], n=1, cutoff=0.6)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""
