"""The warm path's cost: a session with N unchanged images (found in the engine's build cache by
their keys, no build call) against the same session without images.

    .venv/bin/python benchmarks/cache.py [--images 20] [--reps 7] [--json PATH]   # ~30 s; needs the engine

Figures, never verdicts: nothing here fails because something was slow. Target (issue 9): 20
unchanged images add at most 1 s to a session.

A scratch project holds N tiny contexts (``FROM busybox:latest``, each its own ``CMD``, with a
nonce of this run so that the first session really builds them) and two test files of N tests
each, alike but for the images:

- ``test_plain.py``: N tests that use no image (the baseline: pytest, the plugin, N tests);
- ``test_images.py``: N tests, each asking for its own image fixture, with a ``max_size`` marker
  (read from the engine's inspect data: no layer is read, no container runs).

One untimed session builds the N images (its wall time is printed as the cold figure). Then, per
repetition, a pytest subprocess runs each file (the order alternating), timed from start to exit;
every images session must print ``0 image build(s), N reused`` (else the figure would not be the
warm path, and the script stops). The medians, their difference (the overhead of N unchanged
images), the overhead per image and the ratio of the medians are printed, and written as JSON
(``benchmarks/results/cache.json``). At the end the N fixtures' cache tags are untagged
(``noprune``): the benchmark leaves no image behind.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "cache.json"
TARGET_SECONDS = 1.0
"""The issue's target: 20 unchanged images add at most this much to a session."""
SUMMARY = re.compile(r"^slimimage: (\d+) image build\(s\), (\d+) reused, ", re.M)


def fixture_name(i: int) -> str:
    return f"cache_bench_{i:02d}"


def write_project(root: Path, images: int, nonce: str) -> None:
    (root / "pytest.ini").write_text("[pytest]\n")
    plain = ["import pytest", ""]
    with_images = ["import pytest", "from pytest_slimimage import image_fixture", ""]
    for i in range(images):
        context = root / f"img{i:02d}"
        context.mkdir()
        (context / "Dockerfile").write_text(
            f'FROM busybox:latest\nENV SLIMBENCH_NONCE={nonce}\nCMD ["echo", "slimbench-cache-{i}"]\n'
        )
        with_images.append(f'{fixture_name(i)} = image_fixture("img{i:02d}")')
    with_images.append("")
    for i in range(images):
        plain += ["", f"def test_{i:02d}():", "    pass", ""]
        with_images += [
            "",
            '@pytest.mark.slimimage(max_size="10MB")',
            f"def test_{i:02d}({fixture_name(i)}):",
            "    pass",
            "",
        ]
    (root / "test_plain.py").write_text("\n".join(plain))
    (root / "test_images.py").write_text("\n".join(with_images))


def environment(work: Path) -> dict[str, str]:
    """This environment without pytest's own variables; bytecode cached in the scratch folder (this
    workplace sets PYTHONDONTWRITEBYTECODE, which would make each run compile the plugin again)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(work / "pycache")}


def session(root: Path, test_file: str, env: dict[str, str]) -> tuple[float, str]:
    """One pytest session over ``test_file``: its wall time (start to exit) and its output."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", test_file]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"cache: pytest {test_file} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return seconds, proc.stdout


def counts(output: str) -> tuple[int, int]:
    match = SUMMARY.search(output)
    if match is None:
        raise SystemExit(f"cache: no slimimage summary line in:\n{output}")
    return int(match.group(1)), int(match.group(2))


def drop_cache(images: int) -> int:
    """Untag the benchmark fixtures' cache tags (noprune: parents are other builds' cache)."""
    client = docker.from_env()
    removed = 0
    try:
        for i in range(images):
            for image in client.api.images(name=f"pytest-slimimage/{fixture_name(i)}"):
                for tag in image.get("RepoTags") or ():
                    try:
                        client.api.remove_image(tag, noprune=True)
                        removed += 1
                    except docker.errors.NotFound:
                        pass
    finally:
        client.close()
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=20, help="unchanged images in the session (default 20)")
    parser.add_argument("--reps", type=int, default=7, help="repetitions; medians are reported (default 7)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the figures (default {RESULTS})")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="slimbench-cache-"))
    root = work / "project"
    root.mkdir()
    env = environment(work)
    try:
        write_project(root, args.images, uuid.uuid4().hex)
        print(f"cache: building {args.images} images once (untimed warm-up, shown as 'cold')", file=sys.stderr)
        session(root, "test_plain.py", env)  # compiles the bytecode into the scratch cache
        cold, output = session(root, "test_images.py", env)
        if counts(output) != (args.images, 0):
            raise SystemExit(f"cache: the first session should build {args.images} images:\n{output}")
        plain: list[float] = []
        cached: list[float] = []
        for rep in range(args.reps):
            order = ("test_plain.py", "test_images.py") if rep % 2 == 0 else ("test_images.py", "test_plain.py")
            for test_file in order:
                seconds, output = session(root, test_file, env)
                if test_file == "test_plain.py":
                    plain.append(seconds)
                    continue
                if counts(output) != (0, args.images):
                    raise SystemExit(f"cache: not the warm path (expected 0 builds, {args.images} reused):\n{output}")
                cached.append(seconds)
            print(f"cache: repetition {rep + 1}/{args.reps}", file=sys.stderr)
    finally:
        removed = drop_cache(args.images)
        shutil.rmtree(work, ignore_errors=True)

    base, warm = statistics.median(plain), statistics.median(cached)
    overhead = warm - base
    figures: dict[str, Any] = {
        "images": args.images,
        "reps": args.reps,
        "baseline_seconds": round(base, 3),
        "warm_images_seconds": round(warm, 3),
        "overhead_seconds": round(overhead, 3),
        "overhead_per_image_ms": round(overhead / args.images * 1000, 1),
        "ratio": round(warm / base, 3),
        "cold_images_seconds": round(cold, 3),
        "target_overhead_seconds": TARGET_SECONDS * args.images / 20,
        "baseline_samples": [round(x, 3) for x in plain],
        "warm_samples": [round(x, 3) for x in cached],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "tags_removed": removed,
    }
    target = figures["target_overhead_seconds"]
    n = args.images
    rows = [
        (f"{n} tests without images (baseline)", f"{base:.3f} s", f"median of {args.reps}"),
        (f"{n} unchanged images, warm", f"{warm:.3f} s", f"0 builds, {n} reused"),
        (f"overhead of {n} unchanged images", f"{overhead:.3f} s", f"{overhead / n * 1000:.1f} ms each"),
        ("ratio warm / baseline", f"{warm / base:.2f}x", ""),
        (f"target: overhead <= {target:g} s", "met" if overhead <= target else "MISSED", ""),
    ]
    for what, figure, note in rows:
        print(f"{what:<38} {figure:>9}  {note}".rstrip())
    print(f"(first session, building the {args.images} images: {cold:.3f} s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"cache: wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
