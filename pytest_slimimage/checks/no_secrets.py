"""``no_secrets``: no private key, credential or token in any layer of the image -- files a later
layer deleted or overwrote included, since every pull still ships them -- nor in its config's
environment and history. Values are masked in every line it writes."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence

from pytest_slimimage.analysis.attribution import attribute_layers
from pytest_slimimage.analysis.secrets import scan_config
from pytest_slimimage.analysis.waste import WasteReport
from pytest_slimimage.checks.allowlist import allow_parser
from pytest_slimimage.checks.check import FILESYSTEM, Check
from pytest_slimimage.checks.provenance import layer_namer, shown
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.facts import ImageFacts, SecretFinding

SHOWN = 20
"""Findings shown in full; the rest are counted."""


def _allowed(finding: SecretFinding, allow: Sequence[str]) -> bool:
    names = (finding.path, posixpath.basename(finding.path), finding.rule)
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in allow for name in names)


def config_secrets(facts: ImageFacts) -> list[tuple[SecretFinding, int | None]]:
    """Secrets in the image config: ``ENV`` values (None) and history entries (their index)."""
    found: list[tuple[SecretFinding, int | None]] = []
    for name, value in facts.config.env.items():
        found += [(hit, None) for hit in scan_config(f"ENV {name}", f"{name}={value}")]
    for number, layer in enumerate(facts.layers):
        found += [(hit, number) for hit in scan_config("image history", layer.created_by)]
    return found


def check_no_secrets(facts: ImageFacts, allow: Sequence[str] = ()) -> CheckResult:
    """No private key, credential or token in any layer (deleted and overwritten files included) nor
    in the image config; ``allow`` lists glob patterns of paths, basenames or rule ids kept on purpose
    (test keys, say)."""
    if isinstance(allow, str):
        allow = (allow,)
    if facts.secrets is None:
        raise ValueError(f"no_secrets needs the layers of {facts.name}, which were not indexed")
    in_layers = [f for f in facts.secrets if not _allowed(f, allow)]
    in_config = [(f, n) for f, n in config_secrets(facts) if not _allowed(f, allow)]
    details = {
        "found": [_record(f) for f in in_layers] + [_record(f) for f, _ in in_config],
        "allow": list(allow),
    }
    total = len(in_layers) + len(in_config)
    if not total:
        layers = len(facts.waste.layers) if isinstance(facts.waste, WasteReport) else None
        scope = f"its {layers} layer(s)" if layers is not None else "its layers"
        return passing("no_secrets", facts, f"no secret in {scope} or its config", **details)
    layer = layer_namer(facts)
    evidence: list[str] = []
    for finding in in_layers[:SHOWN]:
        where = f"{finding.path}:{finding.line}" if finding.line else finding.path
        evidence.append(f"{where}  {finding.kind}: {finding.preview}")
        evidence.append(f"  added in {layer(finding.layer)}")
        if finding.ended:
            evidence.append(f"  {finding.ended} in {layer(finding.ended_in)}, still shipped")
    wheres = [where for _, where in attribute_layers(facts)]
    for finding, entry in in_config[: max(0, SHOWN - len(in_layers))]:
        if entry is None:
            evidence.append(f"{finding.path} (image config)  {finding.kind}: {finding.preview}")
        else:
            instruction = shown(facts.layers[entry].instruction)
            where = f" ({wheres[entry]})" if entry < len(wheres) else ""
            evidence.append(f"history of {instruction}{where}  {finding.kind}: {finding.preview}")
    if total > SHOWN:
        evidence.append(f"... and {total - SHOWN} more")
    hidden = [f for f in in_layers if f.ended]
    headline = f"{facts.name}: no_secrets: found {total} secret(s)"
    if in_layers:
        layers = len({f.layer for f in in_layers})
        headline += f" in {layers} layer(s)"
    if hidden:
        how = " or ".join(sorted({f.ended for f in hidden}))
        headline += f", {len(hidden)} of them {how} by a later layer but still shipped"
    if in_config:
        headline += f"{',' if in_layers else ''} {len(in_config)} in the image config"
    return CheckResult(
        "no_secrets", facts.name, False, headline, tuple(evidence), _hint(bool(hidden), bool(in_config)), details
    )


def _record(finding: SecretFinding) -> dict[str, object]:
    return {
        "rule": finding.rule,
        "kind": finding.kind,
        "path": finding.path,
        "line": finding.line,
        "preview": finding.preview,  # masked
        "layer": finding.layer,
        "ended": finding.ended,
        "ended_in": finding.ended_in,
    }


def _hint(hidden: bool, config: bool) -> str:
    first = "a file deleted by a later layer still ships in the layer that added it: " if hidden else ""
    out_of = "the context (.dockerignore), ENV and build args (the image config records them)"
    return (
        f"{first}pass secrets to the build with RUN --mount=type=secret (BuildKit), or use them in a build stage"
        f" that is not the final one; keep them out of {out_of if config else 'the context (.dockerignore)'};"
        " rotate any credential an image was pushed with, or allow=[...] test keys kept on purpose"
    )


NO_SECRETS: Check[tuple[str, ...]] = Check(
    "no_secrets",
    check_no_secrets,
    parse=allow_parser("no_secrets", "paths/globs or rule ids"),
    needs=frozenset({FILESYSTEM}),
    value="`True`, or a list of allowed paths/globs",
    passes="no private key, credential or token in any layer (deleted files included) or in ENV and history;"
    " values masked",
    helper_param="allow",
    helper_default=(),
    builtin=True,
)
