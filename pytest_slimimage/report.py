"""Reports over a session's images: terminal rows, JSON (with its schema), Markdown, an SVG chart.

Built from :class:`ImageRecord` s, which are JSON-safe so xdist workers can send them to the
controller (``config.workeroutput``) to be merged there. Pure: strings in, strings out.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_slimimage.sizes import format_delta, format_size

REPORT_VERSION = 1


@dataclass
class ImageRecord:
    """What the session learned about one image (merged across tests and workers)."""

    name: str
    id: str
    size: int
    final_base: str = ""
    dockerfile: str = ""
    limit: int | None = None
    warn_size: int | None = None
    baseline_size: int | None = None
    max_growth: str | None = None
    pull_size: int | None = None
    """Bytes a host pulls (the layers compressed), when ``max_pull_size`` was checked."""
    pull_limit: int | None = None
    """The tightest ``max_pull_size`` budget any test asked for."""
    checks: dict[str, str] = field(default_factory=dict)
    """check name -> "passed" or "failed" (failed wins when several tests ran it)."""
    failures: dict[str, str] = field(default_factory=dict)
    """check name -> the failure headline."""
    layers: list[dict[str, Any]] = field(default_factory=list)
    """[{"instruction": str, "size": int, "from_base": bool}] bottom to top, empty layers left out."""
    builder: str = ""
    """The builder that built it (``buildkit``, ``legacy``, ``buildkit:<buildx builder>``); ``""``
    for an image the plugin did not build."""
    platform: str = ""
    """The image's platform (``linux/arm64``) as its config says."""

    @property
    def delta(self) -> int | None:
        return None if self.baseline_size is None else self.size - self.baseline_size

    @property
    def headroom(self) -> int | None:
        return None if self.limit is None else self.limit - self.size

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["delta"] = self.delta
        data["headroom"] = self.headroom
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def set_columns(self, columns: Mapping[str, Any]) -> None:
        """Fields a check's result sets on its row (:attr:`Check.record`): the smallest ``limit``
        wins (the tightest budget any test asked for); other fields take the latest value."""
        for key, value in columns.items():
            fixed = ("name", "id", "size", "checks", "failures", "layers", "builder", "platform")
            if key not in self.__dataclass_fields__ or key in fixed:
                raise ValueError(f"a check cannot set the report column {key!r}")
            if key in ("limit", "pull_limit") and getattr(self, key) is not None and value is not None:
                value = min(getattr(self, key), value)
            setattr(self, key, value)

    def merge(self, other: ImageRecord) -> None:
        """Fold ``other`` (the same image seen by another test or worker) into this record."""
        for attr in ("limit", "warn_size", "baseline_size", "max_growth", "pull_size", "pull_limit"):
            if getattr(self, attr) is None:
                setattr(self, attr, getattr(other, attr))
        if other.limit is not None and self.limit is not None:
            self.limit = min(self.limit, other.limit)
        if other.pull_limit is not None and self.pull_limit is not None:
            self.pull_limit = min(self.pull_limit, other.pull_limit)
        for check, verdict in other.checks.items():
            if self.checks.get(check) != "failed":
                self.checks[check] = verdict
        for check, text in other.failures.items():
            self.failures.setdefault(check, text)
        if not self.layers:
            self.layers = list(other.layers)
        if not self.builder:
            self.builder = other.builder


def merge_records(records: Iterable[ImageRecord]) -> list[ImageRecord]:
    """One record per image name, sorted by name."""
    merged: dict[str, ImageRecord] = {}
    for record in records:
        if record.name in merged:
            merged[record.name].merge(record)
        else:
            merged[record.name] = ImageRecord.from_json(record.to_json())
    return [merged[name] for name in sorted(merged)]


# ------------------------------------------------------------------------------------------ terminal
def _verdicts(record: ImageRecord) -> str:
    if not record.checks:
        return "-"
    failed = [c for c, v in record.checks.items() if v == "failed"]
    passed = len(record.checks) - len(failed)
    return f"{passed} passed" + (f", {len(failed)} failed ({', '.join(sorted(failed))})" if failed else "")


def _pull(r: ImageRecord) -> str:
    """``312kB``, or ``312kB/500kB`` with its budget; ``-`` when not checked."""
    if r.pull_size is None:
        return "-"
    return format_size(r.pull_size) + (f"/{format_size(r.pull_limit)}" if r.pull_limit is not None else "")


def _pulled(records: Sequence[ImageRecord]) -> bool:
    """Whether any image's pull size is known (the reports then show it beside the size)."""
    return any(r.pull_size is not None for r in records)


def terminal_lines(records: Sequence[ImageRecord], *, verbose: bool = True) -> list[str]:
    """A table, one row per image; with ``verbose=False`` one short line per image. A ``pull``
    column (the compressed size, ``max_pull_size``) follows ``size`` when any image has one."""
    if not records:
        return []
    if not verbose:
        return [
            f"{r.name}: {format_size(r.size)}"
            + (f"/{format_size(r.limit)}" if r.limit is not None else "")
            + (f" ({format_delta(r.delta)})" if r.delta is not None else "")
            + (f", pull {_pull(r)}" if r.pull_size is not None else "")
            + (" FAILED" if "failed" in r.checks.values() else "")
            for r in records
        ]
    pulled = _pulled(records)
    header = ("image", "size", *(("pull",) if pulled else ()), "budget", "headroom", "vs baseline", "final base")
    header = (*header, "builder", "checks")
    rows = [header]
    for r in records:
        rows.append(
            (
                r.name,
                format_size(r.size),
                *((_pull(r),) if pulled else ()),
                format_size(r.limit) if r.limit is not None else "-",
                _headroom(r),
                _delta(r),
                r.final_base or "-",
                r.builder or "-",
                _verdicts(r),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = (1, 2, 3, 4, 5) if pulled else (1, 2, 3, 4)
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _headroom(r: ImageRecord) -> str:
    if r.headroom is None or r.limit is None:
        return "-"
    percent = (r.headroom / r.limit * 100) if r.limit else 0.0
    return f"{format_size(r.headroom)} ({percent:.0f}%)" if r.headroom >= 0 else f"over {format_size(-r.headroom)}"


def _delta(r: ImageRecord) -> str:
    if r.delta is None or r.baseline_size is None:
        return "-"
    percent = (r.delta / r.baseline_size * 100) if r.baseline_size else 0.0
    return f"{format_delta(r.delta)} ({percent:+.1f}%)"


# ---------------------------------------------------------------------------------------------- JSON
def json_report(records: Sequence[ImageRecord], *, meta: Mapping[str, Any] | None = None) -> str:
    data = {
        "version": REPORT_VERSION,
        "meta": dict(meta or {}),
        "images": [r.to_json() for r in records],
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


_SIZE_OR_NULL = {"type": ["integer", "null"], "minimum": 0}
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/pytest-slimimage/pytest-slimimage/report.schema.json",
    "title": "pytest-slimimage report",
    "type": "object",
    "required": ["version", "meta", "images"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": REPORT_VERSION},
        "meta": {"type": "object", "description": "run facts: duration (seconds), session token, pytest exit status"},
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "id", "size", "checks"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "description": "fixture or declarative name"},
                    "id": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                    "size": {"type": "integer", "minimum": 0, "description": "bytes, the engine's Size"},
                    "final_base": {"type": "string"},
                    "dockerfile": {"type": "string"},
                    "builder": {
                        "type": "string",
                        "description": "the builder that built it: legacy, buildkit or buildkit:<buildx builder>;"
                        " empty for an image the plugin did not build",
                    },
                    "platform": {
                        "type": "string",
                        "description": "the image's platform as its config says (linux/arm64); each image of a"
                        " multi-platform build is named name[linux/arm64]",
                    },
                    "limit": _SIZE_OR_NULL,
                    "warn_size": _SIZE_OR_NULL,
                    "baseline_size": _SIZE_OR_NULL,
                    "max_growth": {"type": ["string", "null"]},
                    "pull_size": {
                        "type": ["integer", "null"],
                        "minimum": 0,
                        "description": "bytes a host pulls: the layers compressed as a push sends them (max_pull_size)",
                    },
                    "pull_limit": {
                        "type": ["integer", "null"],
                        "minimum": 0,
                        "description": "the tightest max_pull_size budget asked for",
                    },
                    "delta": {"type": ["integer", "null"], "description": "size - baseline_size"},
                    "headroom": {"type": ["integer", "null"], "description": "limit - size"},
                    "checks": {
                        "type": "object",
                        "additionalProperties": {"enum": ["passed", "failed"]},
                    },
                    "failures": {"type": "object", "additionalProperties": {"type": "string"}},
                    "layers": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["instruction", "size", "from_base"],
                            "additionalProperties": False,
                            "properties": {
                                "instruction": {"type": "string"},
                                "size": {"type": "integer", "minimum": 0},
                                "from_base": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
}


# ------------------------------------------------------------------------------------------ Markdown
def _bar(fraction: float, width: int = 20) -> str:
    fraction = max(0.0, fraction)
    full = min(width, int(fraction * width))
    eighths = int((min(fraction, 1.0) * width - full) * 8) if full < width else 0
    partial = " ▏▎▍▌▋▊▉"[eighths] if eighths else ""
    return ("█" * full + partial).ljust(width, "·") + ("▶" if fraction > 1 else "")


def _cell(text: str) -> str:
    """``text`` inside a table cell: a pipe would end the cell, even inside a code span."""
    return text.replace("|", "\\|")


def markdown_report(records: Sequence[ImageRecord]) -> str:
    """A Markdown table for ``$GITHUB_STEP_SUMMARY``: size bars relative to each budget."""
    pulled = _pulled(records)
    lines = [
        "### Image sizes (pytest-slimimage)",
        "",
        "| image | size |" + (" pull |" if pulled else "") + " budget | of budget | vs baseline | final base | builder"
        " | checks |",
        "|---|--:|" + ("--:|" if pulled else "") + "--:|---|--:|---|---|---|",
    ]
    largest = max((r.size for r in records), default=1) or 1
    for r in records:
        fraction = r.size / r.limit if r.limit else r.size / largest
        bar = f"`{_bar(fraction)}`" + (f" {fraction * 100:.0f}%" if r.limit else "")
        failed = "failed" in r.checks.values()
        verdict = ("❌ " if failed else "✅ ") + _verdicts(r) if r.checks else "-"
        pull = f" {_pull(r)} |" if pulled else ""
        budget = format_size(r.limit) if r.limit is not None else "-"
        lines.append(
            f"| `{_cell(r.name)}` | {format_size(r.size)} |{pull} {budget}"
            f" | {bar} | {_delta(r)} | {_cell(r.final_base) or '-'} | {_cell(r.builder) or '-'} | {verdict} |"
        )
    if not records:
        lines.append("| (no images) | | | | | | | |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- SVG
def svg_chart(records: Sequence[ImageRecord]) -> str:
    """Horizontal bars on a log scale: size, budget line, baseline tick, one row per image."""
    import math

    row_h, left, width, right = 34, 170, 520, 170
    height = 50 + row_h * max(1, len(records))
    values = [v for r in records for v in (r.size, r.limit, r.baseline_size, r.pull_size, r.pull_limit) if v]
    lo = max(1.0, min(values, default=1) / 2)
    hi = max(values, default=10) * 1.5

    def x(value: float) -> float:
        return left + width * (math.log10(max(value, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + right}" height="{height}"'
        ' font-family="sans-serif" font-size="12">',
        "<title>pytest-slimimage: image sizes (log scale)</title>",
        f'<text x="{left}" y="18" font-weight="bold">Image size (log scale); | budget, ◆ baseline'
        + ("; thin bar: pull size (compressed), ¦ its budget" if _pulled(records) else "")
        + "</text>",
    ]
    for i, r in enumerate(records):
        y = 32 + i * row_h
        failed = "failed" in r.checks.values()
        colour = "#c0392b" if failed or (r.limit is not None and r.size > r.limit) else "#2e86c1"
        name = html.escape(r.name)
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{name}</text>')
        out.append(
            f'<rect x="{left}" y="{y + 4}" width="{x(r.size) - left:.1f}" height="16" fill="{colour}">'
            f"<title>{name}: {format_size(r.size)}</title></rect>"
        )
        label = format_size(r.size) + (f" ({_delta(r)})" if r.delta is not None else "")
        if r.pull_size is not None:
            over = r.pull_limit is not None and r.pull_size > r.pull_limit
            out.append(
                f'<rect x="{left}" y="{y + 21}" width="{x(r.pull_size) - left:.1f}" height="4"'
                f' fill="{"#c0392b" if over else "#85c1e9"}"><title>{name}: pulls {format_size(r.pull_size)}'
                f" (compressed)</title></rect>"
            )
            label += f", pull {format_size(r.pull_size)}"
        if r.pull_limit:
            out.append(
                f'<line x1="{x(r.pull_limit):.1f}" x2="{x(r.pull_limit):.1f}" y1="{y + 19}" y2="{y + 27}"'
                f' stroke="#222" stroke-dasharray="2,1"><title>pull budget {format_size(r.pull_limit)}</title></line>'
            )
        out.append(f'<text x="{x(r.size) + 6:.1f}" y="{y + 16}">{html.escape(label)}</text>')
        if r.limit:
            out.append(
                f'<line x1="{x(r.limit):.1f}" x2="{x(r.limit):.1f}" y1="{y}" y2="{y + 24}" stroke="#222"'
                f' stroke-width="2"><title>budget {format_size(r.limit)}</title></line>'
            )
        if r.baseline_size:
            bx = x(r.baseline_size)
            out.append(
                f'<path d="M{bx:.1f},{y + 6} l5,6 l-5,6 l-5,-6 z" fill="#f39c12">'
                f"<title>baseline {format_size(r.baseline_size)}</title></path>"
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"
