"""``dse.traces``: expert routing traces -- generate, replay through LRU / LFU caches, read and write
(the implementation is :mod:`dse.model.traces`; docs/model.md s.12.5)."""
from dse.model.traces import (HEADER, Trace, generate, pick_probabilities, read, replay, sample_sets,  # noqa: F401
                              simulate, tier_map, touched, write, zipf_probabilities)

__all__ = ["HEADER", "Trace", "generate", "pick_probabilities", "read", "replay", "sample_sets", "simulate", "tier_map",
           "touched", "write", "zipf_probabilities"]
