"""What a test's report carries besides its outcome: the image's facts as JUnit properties, and
soft-budget warnings located at the test or table that asked for them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.errors import SlimImageWarning

if TYPE_CHECKING:  # docker-py and the engine side load when a test first needs an image
    from pytest_slimimage.engine.image import BuiltImage


def warn_about(results: Sequence[CheckResult], filename: str, lineno: int) -> None:
    """Soft-budget warnings, located at the test or the declarative table that asked for them."""
    for result in results:
        if "warning" in result.details:
            warnings.warn_explicit(str(result.details["warning"]), SlimImageWarning, filename, lineno)


def add_properties(item: pytest.Item, image: BuiltImage) -> None:
    """Image facts as the item's user properties (JUnit XML ``<property>`` elements)."""
    prefix = f"slimimage.{image.name}"
    for key, value in (
        ("id", image.id),
        ("size", image.size),
        ("platform", image.platform),
        ("final_base", image.dockerfile.final_base if image.has_dockerfile else ""),
        ("dockerfile", image.dockerfile.path if image.has_dockerfile else ""),
    ):
        entry = (f"{prefix}.{key}", value)
        if entry not in item.user_properties:
            item.user_properties.append(entry)
