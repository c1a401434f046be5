"""Size baselines: what each image weighed last time, and how much it may grow.

A baseline file is stable, sorted, diff-friendly JSON::

    {
      "images": {
        "hello": {
          "final_base": "scratch",
          "layers": [{"instruction": "COPY file:... in /hello", "size": 761896}],
          "size": 761896
        }
      },
      "version": 1
    }

Pure: reads and writes text; the plugin decides when.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.fileio import write_atomic
from pytest_slimimage.sizes import Allowance, parse_allowance

VERSION = 1


@dataclass(frozen=True)
class BaselineLayer:
    instruction: str
    size: int


@dataclass(frozen=True)
class BaselineEntry:
    size: int
    final_base: str = ""
    layers: tuple[BaselineLayer, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "final_base": self.final_base,
            "layers": [{"instruction": la.instruction, "size": la.size} for la in self.layers],
            "size": self.size,
        }


@dataclass(frozen=True)
class Baseline:
    images: Mapping[str, BaselineEntry] = field(default_factory=dict)

    def get(self, name: str) -> BaselineEntry | None:
        return self.images.get(name)

    def updated(self, entries: Mapping[str, BaselineEntry]) -> Baseline:
        """This baseline with ``entries`` replacing (or adding) their images; others kept."""
        merged = dict(self.images)
        merged.update(entries)
        return Baseline(merged)

    def dumps(self) -> str:
        data = {"images": {name: self.images[name].to_json() for name in sorted(self.images)}, "version": VERSION}
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_baseline(path: Path) -> Baseline:
    """Read a baseline; a missing file is an empty baseline, a malformed one an error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Baseline()
    except OSError as exc:
        raise SlimImageError(f"cannot read the size baseline {path}: {exc}") from None
    try:
        data = json.loads(text)
        if isinstance(data, dict) and "version" in data and data["version"] != VERSION:
            raise ValueError(f"version {data['version']!r} is not one this pytest-slimimage reads (version {VERSION})")
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("images"), dict):
            raise ValueError(f'expected {{"version": {VERSION}, "images": {{...}}}}')
        images = {}
        for name, raw in data["images"].items():
            if not isinstance(raw, dict):
                raise ValueError(f'{name}: expected {{"size": ..., "layers": [...]}}, got {raw!r}')
            layers = tuple(
                BaselineLayer(str(la["instruction"]), _bytes(la["size"], f"{name}: a layer's size"))
                for la in raw.get("layers", [])
            )
            images[str(name)] = BaselineEntry(
                _bytes(raw["size"], f"{name}: size"), str(raw.get("final_base", "")), layers
            )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        problem = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise SlimImageError(
            f"the size baseline {path} is not valid: {problem}; rewrite it with --slimimage-update-baseline"
        ) from None
    return Baseline(images)


def _bytes(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a number of bytes, got {value!r}")
    return value


def write_baseline(path: Path, baseline: Baseline) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, baseline.dumps())


Growth = Allowance
"""An allowed growth: a percentage of the baseline size (``"5%"``) or a size (``"2MB"``, bytes)."""


def parse_growth(value: object) -> Growth:
    """``"5%"``, ``"2MB"``, ``"512 KiB"`` or bytes; a ``ValueError`` naming the value otherwise."""
    try:
        growth = parse_allowance(value)
    except ValueError:
        growth = None
    if growth is None or (growth.percent is not None and growth.percent < 0):
        raise ValueError(f"not an allowed growth: {value!r} (a percentage like '5%' or a size like '2MB')")
    return growth
