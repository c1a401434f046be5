"""``max_pull_size``: the bytes a registry stores and a host pulls -- each layer as a push sends
it, gzip-compressed -- against a budget."""

from __future__ import annotations

from typing import Any

from pytest_slimimage.analysis.attribution import layers_in_order
from pytest_slimimage.analysis.layerscan import pull_total
from pytest_slimimage.analysis.waste import WasteReport, layer_origins
from pytest_slimimage.checks.check import FILESYSTEM, PULL_SIZES, Check
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.checks.size import parse_budget
from pytest_slimimage.facts import ImageFacts, PulledLayer
from pytest_slimimage.sizes import format_delta, format_size, parse_size

TOP_LAYERS = 5


def layer_labels(facts: ImageFacts, count: int, width: int = 70) -> list[tuple[str, bool]]:
    """What made each of the image's ``count`` filesystem layers (its instruction, cut to ``width``,
    and its Dockerfile line), and whether it comes with the final stage's base: aligned with the
    layer indexes when they were read (``facts.waste``), else paired in order."""
    if isinstance(facts.waste, WasteReport) and len(facts.waste.layers) == count:
        origins = layer_origins(facts, facts.waste)
        made = [(o.instruction, o.where) if o.entry is not None else (o.label, "") for o in origins]
        bases = [origin.from_base for origin in origins]
    else:
        made = layers_in_order(facts, count)
        history = [layer for layer in facts.layers if not layer.empty]
        bases = [layer.from_base for layer in history] if len(history) == count else [False] * count
    labels = []
    for (instruction, where), from_base in zip(made, bases, strict=True):
        text = instruction if len(instruction) <= width else instruction[: width - 3] + "..."
        labels.append((f"{text} ({where})" if where else text, from_base))
    return labels


def _method(layers: tuple[PulledLayer, ...]) -> str:
    if layers and all(layer.source == "manifest" for layer in layers):
        return "as the archive's manifest lists the compressed layers"
    how = "each layer tar gzip-compressed as a push sends it (zlib level 6)"
    return how + ("; compressed layers as the archive's manifest lists them" if any(
        layer.source == "manifest" for layer in layers) else "")  # fmt: skip


def check_max_pull_size(facts: ImageFacts, limit: int | str) -> CheckResult:
    """The image's compressed size, what a registry stores and a host pulls (each distinct layer
    gzip-compressed, as ``docker push`` sends it), is at most ``limit``."""
    budget = parse_size(limit)
    layers = facts.pull
    if layers is None:
        raise ValueError(f"max_pull_size needs the compressed sizes of {facts.name}'s layers, which were not read")
    total = pull_total((layer.digest, layer.compressed) for layer in layers)
    tar_total = pull_total((layer.digest, layer.tar_size) for layer in layers)
    details: dict[str, Any] = {"actual": total, "limit": budget, "size": facts.size, "tar_bytes": tar_total}
    if total <= budget:
        return passing(
            "max_pull_size",
            facts,
            f"{format_size(total)} to pull (compressed), within {format_size(budget)}"
            f" (headroom {format_size(budget - total)})",
            **details,
        )
    labels = layer_labels(facts, len(layers))
    ratio = f"{total / tar_total * 100:.0f}% of its {format_size(tar_total)} of layer tars" if tar_total else ""
    evidence = [
        f"{format_size(facts.size)} on the engine; {format_size(total)} compressed ({ratio}): {_method(layers)}",
        "largest compressed layers:",
    ]
    seen: set[str] = set()
    ranked = []
    for layer, (label, from_base) in zip(layers, labels, strict=True):
        if layer.digest not in seen:
            seen.add(layer.digest)
            ranked.append((layer, label, from_base))
    ranked.sort(key=lambda item: -item[0].compressed)
    for layer, label, _ in ranked[:TOP_LAYERS]:
        evidence.append(f"{format_size(layer.compressed):>8}  (of {format_size(layer.tar_size)})  {label}")
    if len(ranked) > TOP_LAYERS:
        rest = sum(layer.compressed for layer, _, _ in ranked[TOP_LAYERS:])
        evidence.append(f"{format_size(rest):>8}  ({len(ranked) - TOP_LAYERS} smaller layers)")
    base = sum(layer.compressed for layer, _, from_base in ranked if from_base)
    if base * 2 > total:
        hint = (
            f"the base image's layers are {format_size(base)} of it: start the final stage from a smaller base"
            " (scratch, distroless, busybox) and COPY --from the build stage only what the program needs"
        )
    else:
        hint = (
            "shrink the largest compressed layers above: build in a separate stage and COPY --from only the"
            " artifact, delete caches in the RUN that makes them; files already compressed (.gz, .zip, .jar,"
            " images) do not shrink when pushed"
        )
    return CheckResult(
        "max_pull_size",
        facts.name,
        False,
        f"{facts.name}: max_pull_size: {format_size(total)} to pull ({total} bytes compressed) exceeds the"
        f" budget of {format_size(budget)} by {format_delta(total - budget)}",
        tuple(evidence),
        hint,
        details,
    )


def _pull_columns(result: CheckResult) -> dict[str, Any]:
    actual, limit = result.details.get("actual"), result.details.get("limit")
    columns: dict[str, Any] = {}
    if isinstance(actual, int):
        columns["pull_size"] = actual
    if isinstance(limit, int):
        columns["pull_limit"] = limit
    return columns


MAX_PULL_SIZE: Check[int] = Check(
    "max_pull_size",
    check_max_pull_size,
    parse=parse_budget,
    per_platform=True,
    needs=frozenset({PULL_SIZES}),
    explain_with=frozenset({FILESYSTEM}),
    value="a size, as `max_size`",
    passes="the compressed size a registry stores and a host pulls (each layer gzip-compressed as `docker push`"
    " sends it; an OCI archive's own compressed layers as its manifest lists them) is at most this",
    helper_param="limit",
    record=_pull_columns,
    builtin=True,
)
