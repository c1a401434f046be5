"""The cost of the verdicts that read more than the layer index -- ``no_secrets`` and
``max_pull_size`` -- on the article's naive image (``FROM gcc``, ~458 MB), cold and warm.

    .venv/bin/python benchmarks/verdicts.py [--reps 3] [--json PATH] [--skip-export]   # ~3 min; needs the engine

Figures, never verdicts: nothing here fails because something was slow.

The naive image is built once, untimed, from ``example_project/Dockerfile.naive`` under a tag of
this run (removed at the end, ``noprune``). Each figure is one fresh Python process that opens
the image by that tag (the plugin's ``existing`` path: never built, pulled or removed) and asks
for one check **by its registered name** (``check_once``, the path every marker, table and
helper takes), timed inside the process around that call alone (interpreter and imports are not
counted). A check not registered (yet) is reported as such, not measured: the script names the
checks it measures, nothing else, so a check added later is picked up by name.

- cold: an empty layer cache (a fresh folder); warm: the folder the cold run just filled, in a
  new process (so nothing is remembered in memory). "Cold" is about the layer cache only: the
  OS page cache is warm, and the engine's storage is read directly where this process may
  (``SLIMIMAGE_LAYER_SOURCE=auto``, the default), or through its export (``export``, for
  ``max_pull_size`` a second cold row).
- references: ``max_size`` (reads nothing but the engine's inspect data) and ``max_waste`` (the
  layer index alone), so that each figure can be read as "over the index".

Values that pass are asked for (``max_pull_size="1GB"``, ``no_secrets=True`` on an image with no
secret), so no failure's extra evidence is gathered. Medians of ``--reps``; peak memory
(``ru_maxrss``) of each process. A table on stdout, JSON in ``benchmarks/results/verdicts.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import Any

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "verdicts.json"

CASES: tuple[tuple[str, object, str], ...] = (
    ("max_size", "1GB", "auto"),
    ("max_waste", "100%", "auto"),
    ("no_secrets", True, "auto"),
    ("max_pull_size", "1GB", "auto"),
    ("max_pull_size", "1GB", "export"),
)
"""(check, a value it passes with, layer source): what is measured, by name."""

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pytest_slimimage.analysis.layercache import LayerCache
    from pytest_slimimage.checks.evaluate import check_once
    from pytest_slimimage.engine.builds import ImageBuilder
    from pytest_slimimage.engine.client import Engine

    tag, check, value, cache = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    engine = Engine.connect()
    image = ImageBuilder(engine, session="verdicts", layer_cache=LayerCache(cache)).existing(tag, name="naive")
    started = time.perf_counter()
    result, _ = check_once(image, check, value)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "passed": result.passed, "headline": result.headline, "peak": peak}))
    """
)


def registered() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", "from pytest_slimimage.checks.registry import REGISTRY; print(*REGISTRY.names())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(out.stdout.split())


def measure(tag: str, check: str, value: object, cache: Path, source: str) -> dict[str, Any]:
    env = {**os.environ, "SLIMIMAGE_LAYER_SOURCE": source}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, tag, check, json.dumps(value), str(cache)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    sample: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return sample


def say(text: str) -> None:
    print(f"verdicts: {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--skip-export", action="store_true", help="leave out the cold rows through the export")
    args = parser.parse_args(argv)

    client = docker.from_env(timeout=600)
    names = registered()
    cases = [c for c in CASES if not (args.skip_export and c[2] == "export")]
    missing = sorted({check for check, _, _ in cases if check not in names})
    for check in missing:
        say(f"{check} is not a registered check (yet): not measured")
    cases = [c for c in cases if c[0] in names]

    tag = f"slimbench-verdicts-{uuid.uuid4().hex[:8]}:naive"
    work = Path(tempfile.mkdtemp(prefix="slimbench-verdicts-"))
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        say(f"building the naive image (example_project/Dockerfile.naive) as {tag} (not timed)")
        client.images.build(
            path=str(ROOT / "example_project"), dockerfile="Dockerfile.naive", tag=tag, rm=True, forcerm=True
        )
        attrs = client.api.inspect_image(tag)  # type: ignore[no-untyped-call]
        size, layers = int(attrs["Size"]), len(attrs["RootFS"]["Layers"])
        for rep in range(args.reps):
            order = cases[rep % len(cases) :] + cases[: rep % len(cases)]  # rotate: a busy spell hits each alike
            for check, value, source in order:
                key = f"{check} ({source})"
                cache = work / f"cache-{rep}-{check}-{source}"
                cold = measure(tag, check, value, cache, source)
                warm = measure(tag, check, value, cache, source)
                for when, sample in (("cold", cold), ("warm", warm)):
                    samples.setdefault(key, {}).setdefault(when, []).append(sample)
                    if not sample["passed"]:
                        say(f"{key} {when} did not pass: {sample['headline']}")
                say(f"rep {rep + 1}/{args.reps} {key}: cold {cold['seconds']:.2f} s, warm {warm['seconds']:.2f} s")
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.api.remove_image(tag, noprune=True)
        client.close()

    rows = []
    for key, by_when in samples.items():
        row: dict[str, Any] = {"case": key}
        for when in ("cold", "warm"):
            seconds = [s["seconds"] for s in by_when[when]]
            row[when] = round(statistics.median(seconds), 3)
            row[f"{when}_all"] = [round(s, 3) for s in seconds]
            row[f"{when}_peak_mb"] = round(max(s["peak"] for s in by_when[when]) / 1e6, 1)
        row["headline"] = by_when["cold"][-1]["headline"]
        rows.append(row)
    report = {
        "image": {"dockerfile": "example_project/Dockerfile.naive", "size": size, "layers": layers},
        "reps": args.reps,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "not_registered": missing,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print(f"naive image: {size / 1e6:.0f} MB, {layers} layers; median of {args.reps}; {report['cores']} cores")
    print(f"{'check (layer source)':<28} {'cold':>8} {'warm':>8} {'peak MB':>8}  result")
    for row in rows:
        peak = max(row["cold_peak_mb"], row["warm_peak_mb"])
        print(f"{row['case']:<28} {row['cold']:>7.2f}s {row['warm']:>7.2f}s {peak:>8.0f}  {row['headline']}")
    for check in missing:
        print(f"{check:<28} {'-':>8} {'-':>8} {'-':>8}  not a registered check yet")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
