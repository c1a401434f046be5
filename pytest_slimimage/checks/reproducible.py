"""``reproducible``: the same Dockerfile and context, built again without cache, give the same
filesystem -- paths, types, modes, owners and content (and modification times under ``"strict"``)."""

from __future__ import annotations

from typing import Any

from pytest_slimimage.analysis.reproducibility import compare, likely_causes
from pytest_slimimage.analysis.waste import WasteReport
from pytest_slimimage.checks.check import FILESYSTEM, REBUILD, Check, ParseContext
from pytest_slimimage.checks.pull_size import layer_labels
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.facts import ImageFacts

STRICT = "strict"
CONTENT = "content"
TOP_PATHS = 10


def check_reproducible(facts: ImageFacts, mode: bool | str = True) -> CheckResult:
    """A rebuild without cache has the same files as the image: paths, types, modes, owners and
    content digests; their modification times too when ``mode`` is ``"strict"``."""
    strict = mode == STRICT
    rebuild = facts.rebuild
    if facts.file_states is None or rebuild is None:
        raise ValueError(f"reproducible needs {facts.name} built a second time, and it was not")
    first, second = facts.file_states, rebuild.files
    differences = compare(first, second, strict=strict)
    compared = "types, modes, owners, content and modification times" if strict else "types, modes, owners and content"
    details: dict[str, Any] = {
        "rebuild": rebuild.id,
        "strict": strict,
        "paths": len(first),
        "differences": [{"path": d.path, "differs": list(d.aspects)} for d in differences[:TOP_PATHS]],
        "different": len(differences),
    }
    if not differences:
        same = " (the same image id)" if rebuild.id == facts.id else ""
        return passing(
            "reproducible",
            facts,
            f"a rebuild without cache gives the same {len(first)} paths ({compared}){same}",
            **details,
        )
    if isinstance(facts.waste, WasteReport):
        count = len(facts.waste.layers)
    else:
        count = sum(1 for layer in facts.layers if not layer.empty)
    labels = layer_labels(facts, count)
    evidence = [
        f"built again without cache as {rebuild.id[:19]} (the image is {facts.id[:19]}); compared {compared}"
        + ("" if strict else ", not modification times"),
    ]
    for difference in differences[:TOP_PATHS]:
        layer = difference.layer
        label = labels[layer][0] if 0 <= layer < len(labels) else f"layer {layer}"
        evidence.append(f"{difference.path}: {difference.describe()}; written by {label}")
    if len(differences) > TOP_PATHS:
        evidence.append(f"... and {len(differences) - TOP_PATHS} more paths")
    causes = likely_causes(differences)
    evidence += [f"also likely: {cause}" for cause in causes[1:]]
    return CheckResult(
        "reproducible",
        facts.name,
        False,
        f"{facts.name}: reproducible: building again without cache changes {len(differences)} of"
        f" {len(set(first) | set(second))} paths",
        tuple(evidence),
        causes[0],
        details,
    )


def _parse(value: object, context: ParseContext) -> str | None:
    if value is True:
        return CONTENT
    if value is False or value is None:
        return None
    if value == STRICT:
        return STRICT
    raise ValueError(f'expects True, False or "strict", got {value!r}')


REPRODUCIBLE: Check[str] = Check(
    "reproducible",
    check_reproducible,
    parse=_parse,
    needs=frozenset({FILESYSTEM, REBUILD}),
    value='`True`, or `"strict"`',
    passes="building the same Dockerfile and context again without cache gives the same paths, types, modes,"
    ' owners and content (and modification times with `"strict"`); costs a second build',
    helper_param="mode",
    helper_default=True,
    builtin=True,
)
