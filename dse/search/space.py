"""The ``search:`` config section: design space, fixed settings, objectives and constraints, checked up front.

Every problem is a one-line :class:`~dse.config.params.DseError` raised before a study is opened or a trial runs.

Space entries are keyed by a dse parameter (``placement``, ``batch``, ``hbm_cache_fraction``, ``tp``, ``dp``,
...) or a dotted config path (``system.tiers.ssd.read_pj_per_bit``, also accepted nested). The GPU count is tp x dp; when the space
varies tp or dp and ep is neither searched nor fixed, every GPU holds experts (ep = tp x dp), the way the
paper lays out DeepSeek-R1 (TP8 x DP4, EP32).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from dse.config import presets
from dse.run.engine import KV_VARIABLES, VARIABLES
from dse.config.inputs import expand_values
from dse.analyze.serving import VARIABLES as REQUEST_VARIABLES
from dse.config.params import check_values, lookup
from dse.errors import DseError

KINDS = ("categorical", "int", "float")
#: Variables with one value per design point (objectives and constraints can name these).
POINT_VARIABLES = tuple(k for k in {**VARIABLES, **KV_VARIABLES, **REQUEST_VARIABLES} if k not in ("energy",
                                                                                           "capacity_cost"))
SAMPLERS = ("nsga2", "tpe", "random")


@dataclass
class Space:
    distributions: dict[str, BaseDistribution]
    fixed: dict = field(default_factory=dict)
    objectives: list[str] = field(default_factory=list)
    constraints: dict[str, tuple[float, float]] = field(default_factory=dict)   # name: (min, max)
    layout: dict = field(default_factory=dict)   # tp, dp of the base system (for ep = tp x dp)
    derive_ep: bool = False                      # ep = tp x dp (tp or dp searched, ep not set)

    def digest(self, base: dict) -> str:
        """Identifies the question: space, settings, objectives, constraints and the base model/system/workload."""
        blob = dict(space={k: repr(d) for k, d in self.distributions.items()}, fixed=self.fixed,
                    objectives=self.objectives, constraints=self.constraints,
                    base={k: base.get(k) for k in ("model", "system", "workload", "accounting")})
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def discrete_values(self) -> dict[str, list] | None:
        """Every value of each variable when all are discrete (categorical, int, float with step), else None."""
        out = {}
        for name, d in self.distributions.items():
            if isinstance(d, CategoricalDistribution):
                out[name] = list(d.choices)
            elif isinstance(d, IntDistribution):
                out[name] = list(range(d.low, d.high + 1, d.step))
            elif d.step is not None:
                n = int(math.floor((d.high - d.low) / d.step + 1e-9))
                out[name] = [float(np.round(d.low + i * d.step, 12)) for i in range(n + 1)]
            else:
                return None
        return out

    def size(self) -> int | None:
        values = self.discrete_values()
        return None if values is None else int(np.prod([len(v) for v in values.values()], dtype=float))


def _number(where: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise DseError(f"{where}={v!r} is not a number")
    return v


def _distribution(name: str, spec, base: dict) -> BaseDistribution:
    where = f"search.space.{name}"
    if not isinstance(spec, dict) or spec.get("type") not in KINDS:
        kind = spec.get("type") if isinstance(spec, dict) else spec
        raise DseError(f"{where}.type={kind!r}: allowed {', '.join(KINDS)}")
    allowed = {"categorical": {"type", "choices"}, "int": {"type", "low", "high", "step", "log"},
               "float": {"type", "low", "high", "step", "log"}}[spec["type"]]
    extra = set(spec) - allowed
    if extra:
        raise DseError(f"{where}: unknown key {sorted(extra)[0]!r}; a {spec['type']} distribution takes {sorted(allowed)}")
    param = _param(name, base, where)
    if spec["type"] == "categorical":
        choices = list(spec.get("choices") or [])
        if not choices:
            raise DseError(f"{where}.choices: give at least one value")
        if len(set(map(repr, choices))) != len(choices):
            raise DseError(f"{where}.choices has duplicates: {choices}")
        check_values(where, choices, param)
        if param is not None and param.preset_group:
            for c in choices:
                presets.check_preset(param.preset_group, c)
        return CategoricalDistribution(choices)
    for key in ("low", "high"):
        if key not in spec:
            raise DseError(f"{where}.{key} is missing: a {spec['type']} distribution needs low and high")
    low, high = _number(f"{where}.low", spec["low"]), _number(f"{where}.high", spec["high"])
    if low > high:
        raise DseError(f"{where}: low={low} > high={high}")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if log and low <= 0:
        raise DseError(f"{where}: a log distribution needs low > 0 (got low={low})")
    if step is not None:
        _number(f"{where}.step", step)
        if step <= 0:
            raise DseError(f"{where}.step={step}: must be > 0")
        if log:
            raise DseError(f"{where}: log and step cannot be combined")
    if param is not None and param.categorical:
        raise DseError(f"{where}: {name} is categorical; use type: categorical with choices")
    if spec["type"] == "int":
        if float(low) != int(low) or float(high) != int(high) or (step is not None and float(step) != int(step)):
            raise DseError(f"{where}: an int distribution needs integer low, high and step")
        check_values(where, [int(low), int(high)], param)
        return IntDistribution(int(low), int(high), log=log, step=int(step or 1))
    if param is not None and param.integer:
        raise DseError(f"{where}: {name} takes integers; use type: int")
    check_values(where, [float(low), float(high)], param)
    if step is not None and abs((high - low) / step - round((high - low) / step)) > 1e-9:
        raise DseError(f"{where}: (high - low) = {high - low} is not a multiple of step={step}")
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))


def _param(name: str, base: dict, where: str):
    try:
        path, param = lookup(name)
    except DseError as e:
        raise DseError(f"{where}: {e}") from None
    if param is None and not path.startswith("flash."):
        try:
            presets.get_path(base, path)
        except DseError:
            raise DseError(f"{where}: unknown config key {path!r} (a dse parameter or an existing dotted path)") from None
    return param


def _variable(where: str, name) -> str:
    if name not in POINT_VARIABLES:
        raise DseError(f"{where}: unknown variable {name!r}; allowed {', '.join(POINT_VARIABLES)}")
    return name


def _flatten(tree: dict, leaf, prefix: str = "") -> dict:
    """{"system": {"gpu": {"price_usd": x}}} -> {"system.gpu.price_usd": x}; ``leaf(v)`` says where to stop
    (Hydra command-line overrides such as +search.fixed.system.gpu.price_usd=0 arrive nested)."""
    out = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and not leaf(v) and v:
            out.update(_flatten(v, leaf, name + "."))
        else:
            out[name] = v
    return out


def parse(search: dict, base: dict) -> Space:
    """Check the ``search:`` section against the composed config ``base``; return the :class:`Space`."""
    if not isinstance(search, dict):
        raise DseError("search: missing section (pick a preset: search=<name> from dse/conf/search/)")
    space = _flatten(search.get("space") or {}, lambda v: "type" in v)
    if not space:
        raise DseError("search.space: declare at least one variable")
    dists = {name: _distribution(name, spec, base) for name, spec in space.items()}

    fixed = _flatten(search.get("fixed") or {}, lambda v: False)
    for name, value in fixed.items():
        if name in dists:
            raise DseError(f"search.fixed.{name}: also declared in search.space")
        param = _param(name, base, f"search.fixed.{name}")
        value = expand_values(name, value)
        if isinstance(value, list):
            raise DseError(f"search.fixed.{name}: one value, not a list (search.space declares variables)")
        check_values(f"search.fixed.{name}", value, param)
        if param is not None and param.preset_group:
            presets.check_preset(param.preset_group, value)

    objectives = search.get("objectives") or []
    if isinstance(objectives, str) or not 2 <= len(objectives) <= 3:
        raise DseError(f"search.objectives={objectives!r}: give 2 or 3 variable names (all minimized)")
    objectives = [_variable(f"search.objectives[{i}]", o) for i, o in enumerate(objectives)]
    if len(set(objectives)) != len(objectives):
        raise DseError(f"search.objectives={objectives}: duplicates")

    constraints = {}
    for name, bound in (search.get("constraints") or {}).items():
        where = f"search.constraints.{name}"
        _variable(where, name)
        if not isinstance(bound, dict) or not bound or set(bound) - {"min", "max"}:
            raise DseError(f"{where}: give {{max: value}} and/or {{min: value}}")
        lo = _number(f"{where}.min", bound["min"]) if "min" in bound else -math.inf
        hi = _number(f"{where}.max", bound["max"]) if "max" in bound else math.inf
        if lo > hi:
            raise DseError(f"{where}: min={lo} > max={hi}")
        constraints[name] = (float(lo), float(hi))

    named = [v for v in [*objectives, *constraints] if v in REQUEST_VARIABLES]
    requests = any(k in fixed or k in dists or base["workload"].get(k) is not None for k in ("prompt_len", "profile"))
    if named and not requests:
        raise DseError(f"search: {named[0]} is a request variable: fix prompt_len and output_len (or a profile) in "
                       "search.fixed or search.space")
    kv = "kv_placement" in fixed or "kv_placement" in dists or base["workload"].get("kv_placement", "hbm") != "hbm"
    kv_named = [v for v in [*objectives, *constraints] if v in KV_VARIABLES]
    if kv_named and not kv:
        raise DseError(f"search: {kv_named[0]} needs kv_placement in search.fixed or search.space")

    derive_ep = ("tp" in dists or "dp" in dists) and "ep" not in dists and "ep" not in fixed
    layout = {k: fixed.get(k, base["system"][k]) for k in ("tp", "dp")}
    return Space(distributions=dists, fixed=fixed, objectives=objectives, constraints=constraints,
                 layout=layout, derive_ep=derive_ep)


def check_run_settings(search: dict) -> None:
    """Sampler, seed, trial counts, the study name: one-line errors."""
    from dse.files import confined

    confined(search.get("name"), "search.name")
    if search.get("sampler", "nsga2") not in SAMPLERS:
        raise DseError(f"search.sampler={search.get('sampler')!r}: allowed {', '.join(SAMPLERS)}")
    for key, lo in (("n_trials", 0), ("batch_size", 2)):
        v = search.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise DseError(f"search.{key}={v!r}: an integer >= {lo}")
    shares = {k: search.get(k, 0.0) for k in ("local_search", "random_share")}
    for k, v in shares.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise DseError(f"search.{k}={v!r}: a share of each batch, in [0, 1]")
    if sum(shares.values()) > 1:
        raise DseError(f"search.local_search + search.random_share = {sum(shares.values())}: at most 1")
    seed = search.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DseError(f"search.seed={seed!r}: an integer >= 0")
