"""One range table: what ``help(dse.evaluate)`` prints is what is enforced (dse.config.rules.RULES)."""
import re

import pytest

import dse
from dse.config import rules
from dse.config.params import PARAMS

BASE = dict(model="mixtral-8x7b", system="paper-4xh100", placement="hbm", batch=1)
LINE = re.compile(r"^\s+(\w+)(?: \[[^\]]*\])? : (integer|number) in \[([^,\]]+), ([^\]]+)\]", re.M)
#: Bounds that are accepted but would build a very large step (per-expert loops over 2^20 experts): their inside
#: check goes through the rule table alone.
HEAVY = {"n_experts", "top_k", "dynamic_cache_experts"}


def documented():
    return {name: (kind == "integer", float(lo), float(hi)) for name, kind, lo, hi in LINE.findall(dse.evaluate.__doc__)}


def test_every_numeric_parameter_is_documented_with_the_enforced_range():
    doc = documented()
    numeric = [n for n, p in PARAMS.items() if not p.categorical]
    assert sorted(doc) == sorted(numeric)
    for name in numeric:
        rule = rules.rule_for(PARAMS[name].path)
        assert doc[name] == (rule.integer, rule.lo, rule.hi), name


@pytest.mark.parametrize("name", [n for n, p in PARAMS.items() if not p.categorical])
def test_documented_bounds_are_accepted_and_beyond_them_refused(name):
    integer, lo, hi = documented()[name]
    step = 1 if integer else max(abs(hi), 1.0) * 1e-6
    inside = [int(v) if integer else v for v in (lo, hi)]
    for value in inside:
        try:
            if name in HEAVY and value == inside[1]:
                rules.check_leaf(name, [value], rules.rule_for(PARAMS[name].path))
            else:
                dse.evaluate(**{**BASE, name: value})
        except dse.DseError as err:   # another rule (top_k <= n_experts, tp divides the heads) may refuse it
            assert "out of range" not in str(err) or f"{name}=" not in str(err), err
    for value in (lo - step, hi + step):
        value = int(value) if integer else value
        with pytest.raises(dse.DseError, match=rf"{name}={re.escape(str(value))}.*out of range"):
            dse.evaluate(**{**BASE, name: value})
