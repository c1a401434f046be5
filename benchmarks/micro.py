"""Micro-benchmarks of the pure core: ``compute_waste`` and ``merge_layers`` on layers built in memory.

    .venv/bin/python benchmarks/micro.py [--reps N] [--json PATH]   # ~20 s; no engine

Figures, never verdicts: nothing here fails on time. (The unit tests assert the complexity
instead, by counting steps: ``tests/unit/test_waste.py``, ``tests/unit/test_layers.py``.)

Each case is timed in this process, CPU time (``time.process_time``), median of ``--reps`` runs,
and reported with two ratios that do not depend on how fast the machine is:

- ``x floor``: its time over the floor's, one plain pass over the same layers (a dict of every
  layer's entries, the whiteouts walked), timed alongside: the least any analysis does;
- ``x at 2n``: its time on twice the input over its time on the input: 2.0 is linear, 4.0
  quadratic.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_slimimage.analysis.layers import LayerIndex, merge_layers
from pytest_slimimage.analysis.waste import compute_waste
from pytest_slimimage.facts import FileEntry

RESULTS = Path(__file__).resolve().parent / "results" / "micro.json"
DIGEST = "sha256:" + "0" * 64


def _layer(entries: Sequence[FileEntry] = (), whiteouts: Sequence[str] = (), opaque: Sequence[str] = ()) -> LayerIndex:
    return LayerIndex(
        digest=DIGEST,
        entries={e.path: e for e in entries},
        whiteouts=list(whiteouts),
        opaque_dirs=list(opaque),
        size=sum(e.size for e in entries if e.kind == "file"),
    )


def _file(path: str) -> FileEntry:
    return FileEntry(path, "file", 100)


def waste_case(groups: int, per_group: int = 1000) -> list[LayerIndex]:
    """The unit test's image at ``groups=100``: 100k files in 100 directories, then a layer that deletes
    every other directory and one directory's files one by one, one that rewrites a file in each odd
    directory and hides one (opaque), one that deletes half the files of most odd directories."""
    files = [_file(f"/data/{n // per_group}/{n}") for n in range(groups * per_group)]
    dirs = [FileEntry("/data", "dir"), *(FileEntry(f"/data/{g}", "dir") for g in range(groups))]
    group_1 = [f"/data/1/{n}" for n in range(per_group, 2 * per_group)]
    rewrites = [_file(f"/data/{g}/{g * per_group + 7}") for g in range(3, groups, 2)]
    many = [f"/data/{g}/{g * per_group + k}" for g in range(7, groups, 2) for k in range(per_group // 2)]
    return [
        _layer([*dirs, *files]),
        _layer(whiteouts=[f"/data/{g}" for g in range(0, groups, 2)] + group_1),
        _layer(rewrites, opaque=["/data/5"]),
        _layer(whiteouts=many),
    ]


def merge_case(files: int) -> list[LayerIndex]:
    """The unit test's merge at ``files=100_000``: files in directories of 100, every other directory deleted."""
    below = _layer([_file(f"/data/{n // 100}/{n}") for n in range(files)])
    return [below, _layer(whiteouts=[f"/data/{g}" for g in range(0, files // 100, 2)])]


def floor(layers: Sequence[LayerIndex]) -> object:
    """One plain pass over the layers: every entry into a dict, every whiteout looked up."""
    seen = {path: entry for layer in layers for path, entry in layer.entries.items()}
    return [seen.get(path) for layer in layers for path in (*layer.whiteouts, *layer.opaque_dirs)]


@dataclass(frozen=True)
class Case:
    name: str
    entries: int
    """Entries, whiteouts and opaque dirs of the case's layers (at n)."""
    seconds: float
    floor_seconds: float
    seconds_2n: float

    @property
    def per_entry_us(self) -> float:
        return self.seconds / self.entries * 1e6

    @property
    def x_floor(self) -> float:
        return self.seconds / self.floor_seconds

    @property
    def x_2n(self) -> float:
        return self.seconds_2n / self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.name,
            "entries": self.entries,
            "cpu_seconds": round(self.seconds, 4),
            "floor_cpu_seconds": round(self.floor_seconds, 4),
            "cpu_seconds_at_2n": round(self.seconds_2n, 4),
            "us_per_entry": round(self.per_entry_us, 3),
            "x_floor": round(self.x_floor, 2),
            "x_at_2n": round(self.x_2n, 2),
        }


def cpu_seconds(func: Callable[[Sequence[LayerIndex]], object], layers: Sequence[LayerIndex], reps: int) -> float:
    """Median CPU time of ``func(layers)`` over ``reps`` runs."""
    times = []
    for _ in range(reps):
        started = time.process_time()
        func(layers)
        times.append(time.process_time() - started)
    return statistics.median(times)


def measure(
    name: str,
    func: Callable[[Sequence[LayerIndex]], object],
    build: Callable[[int], list[LayerIndex]],
    n: int,
    reps: int,
) -> Case:
    print(f"micro: {name}", file=sys.stderr)
    layers, doubled = build(n), build(2 * n)
    return Case(
        name=name,
        entries=sum(len(la.entries) + len(la.whiteouts) + len(la.opaque_dirs) for la in layers),
        seconds=cpu_seconds(func, layers, reps),
        floor_seconds=cpu_seconds(floor, layers, reps),
        seconds_2n=cpu_seconds(func, doubled, reps),
    )


def print_table(cases: Sequence[Case], reps: int) -> None:
    print(
        f"\nmicro-benchmarks: CPU seconds, median of {reps} runs in one process"
        f" (Python {platform.python_version()}, {platform.machine()})"
    )
    header = ["case", "entries", "seconds", "us/entry", "x floor", "x at 2n"]
    rows = [
        [c.name, f"{c.entries:,}", f"{c.seconds:.3f}", f"{c.per_entry_us:.2f}", f"{c.x_floor:.1f}x", f"{c.x_2n:.2f}x"]
        for c in cases
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for n, row in enumerate([header, *rows]):
        print("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print("x floor: over one plain pass over the same layers; x at 2n: twice the input (2.0 linear, 4.0 quadratic)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=5, help="runs of every case (median reported)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where the figures go (default: {RESULTS})")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    cases = [
        measure("compute_waste: 100k files, 4 layers", compute_waste, waste_case, 100, args.reps),
        measure("merge_layers: 100k files, 500 dir whiteouts", merge_layers, merge_case, 100_000, args.reps),
    ]
    print_table(cases, args.reps)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"reps": args.reps, "python": platform.python_version(), "cases": [c.to_json() for c in cases]}
    args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"micro: figures in {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
