"""The physics, numpy only: routing, the hierarchy, the decode-step operation table, requests, capacity (docs/model.md).

Nothing here reads presets or validates input: :mod:`dse.config` builds the inputs the functions here take."""


def namespace(tree):
    """A nested dict as nested SimpleNamespaces (how the kernel reads its inputs: ``m.hidden``, ``t.experts.flops``);
    anything else as it is."""
    from types import SimpleNamespace

    if not isinstance(tree, dict):
        return tree
    return SimpleNamespace(**{k: namespace(v) for k, v in tree.items()})
