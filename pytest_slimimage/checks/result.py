"""The verdict of one check on one image (:class:`CheckResult`), and small helpers the checks share.

Pure: no I/O, no pytest, no docker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_slimimage.dockerfile.model import Dockerfile
from pytest_slimimage.facts import ImageFacts


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check on one image, with the text a person needs to act on it."""

    check: str
    image: str
    passed: bool
    headline: str
    evidence: tuple[str, ...] = ()
    hint: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    """JSON-safe figures for reports (actual, expected, ...)."""

    def message(self) -> str:
        """Headline, indented evidence, then one ``hint:`` line."""
        lines = [self.headline]
        lines += [f"  {line}" for line in self.evidence]
        if self.hint and not self.passed:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message()


def passing(check: str, facts: ImageFacts, headline: str, **details: Any) -> CheckResult:
    return CheckResult(check, facts.name, True, f"{facts.name}: {check}: {headline}", details=details)


def need_dockerfile(facts: ImageFacts, check: str) -> Dockerfile:
    if facts.dockerfile is None:
        raise ValueError(
            f"{check} needs the image's Dockerfile; {facts.name} was not built from one"
            " (for an existing image, pass the dockerfile= it was built from)"
        )
    return facts.dockerfile
