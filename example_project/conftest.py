"""A check of this project's own, registered like a built-in one (see the README's "Your own
checks"): the marker keyword ``max_layers``, the table key ``max_layers`` in pyproject.toml and
``assert_max_layers(image, limit)`` all run it."""

import pytest_slimimage as si


@si.register_check(
    "max_layers",
    parse=int,
    value="a number of layers",
    passes="the image has at most that many filesystem layers (its base's included)",
)
def max_layers(facts: si.ImageFacts, limit: int) -> si.CheckResult:
    layers = [layer for layer in facts.layers if not layer.empty]
    return si.CheckResult(
        check="max_layers",
        image=facts.name,
        passed=len(layers) <= limit,
        headline=f"{facts.name}: max_layers: {len(layers)} layers, limit {limit}",
        evidence=tuple(f"{layer.size:>10} B  {layer.instruction[:80]}" for layer in layers)
        if len(layers) > limit
        else (),
        hint="" if len(layers) <= limit else "copy the artifact into a fresh final stage (FROM scratch + one COPY)",
    )
