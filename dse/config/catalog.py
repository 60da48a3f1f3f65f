"""The presets shipped in dse/conf: name, a one-line description and the provenance grade of their numbers.

``dse.presets()`` returns them all (``dse.presets("model")`` one group); ``dse list models`` prints them.

The grade of a preset is the weakest evidence behind any of its physical numbers (``measured`` > ``datasheet`` >
``paper`` > ``derived`` > ``assumption``), followed by how many numbers carry each grade. Systems and studies are
graded over everything they compose (GPU, link, tiers, model).
"""
from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

from dse.config.presets import compose, preset_file, presets as names

#: ``dse list`` arguments -> preset groups.
PLURAL = {"models": "model", "systems": "system", "gpus": "gpu", "tiers": "tier", "links": "link",
          "accountings": "accounting", "studies": "study", "searches": "search",
          "profiles": "profile", "engines": "engine"}
#: Evidence grades, strongest first ("fitted": on half of a validation table, reported on the other half).
GRADES = ("measured", "datasheet", "paper", "derived", "fitted", "assumption")


@dataclass(frozen=True)
class Preset:
    group: str
    name: str
    description: str
    grade: str          # e.g. "assumption (datasheet 5, paper 7, assumption 2)"; "-" where no number has provenance

    def __str__(self) -> str:
        return f"{self.group}={self.name}  [{self.grade}]  {self.description}"


def _description(text: str) -> str:
    """The file's leading comment (``@package`` lines skipped), up to its first sentence."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            if lines:
                break
            continue
        body = line.lstrip("#").strip()
        if body.startswith("@package"):
            continue
        lines.append(body)
    words = " ".join(lines)
    for m in re.finditer(r"[.;]\s+(?=[A-Z(])", words):  # the first sentence end that is not an abbreviation
        if not re.search(r"(\bFig|\be\.g|\bi\.e|\bvs|\bcf|\bs)$", words[:m.start()]):
            words = words[:m.start()]
            break
    return words.rstrip(".;") or "-"


def _evidence(tree) -> Counter:
    counts: Counter = Counter()
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "provenance" and isinstance(value, dict):
                counts.update(str(v.get("evidence")) for v in value.values() if isinstance(v, dict))
            else:
                counts.update(_evidence(value))
    elif isinstance(tree, list):
        for v in tree:
            counts.update(_evidence(v))
    return counts


def _grade(counts: Counter) -> str:
    known = [g for g in GRADES if counts.get(g)]
    if not known:
        return "-"
    detail = ", ".join(f"{g} {counts[g]}" for g in known)
    return f"{known[-1]} ({detail})"


@functools.lru_cache(maxsize=None)
def _one(group: str, name: str) -> Preset:
    import yaml

    text = preset_file(group, name).read_text()
    if group in ("system", "study"):
        tree = compose(**{group: name})
        tree = tree["system"] if group == "system" else {k: tree[k] for k in ("model", "system")}
    else:
        tree = yaml.safe_load(text) or {}
    description = _description(text)
    if description == "-" and isinstance(yaml.safe_load(text), dict):
        description = str((yaml.safe_load(text) or {}).get("description", "-"))
    return Preset(group, name, description, _grade(_evidence(tree)))


def describe(group: str) -> list[Preset]:
    """Every preset of ``group`` (model, system, gpu, tier, link, accounting, study, search)."""
    if group not in PLURAL.values():
        from dse.errors import DseError, did_you_mean

        raise DseError(f"unknown preset group {group!r}{did_you_mean(group, PLURAL.values())}: "
                       f"allowed {', '.join(PLURAL.values())}")
    return [_one(group, n) for n in names(group)]


def presets(group: str | None = None):
    """The shipped presets with a one-line description and provenance grade: ``{group: [Preset, ...]}``, or one
    group's list. Each :class:`Preset` prints as ``group=name  [grade]  description``."""
    if group is not None:
        return describe(group)
    return {g: describe(g) for g in PLURAL.values()}

