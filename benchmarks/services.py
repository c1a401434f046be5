"""``serves=`` and ``healthy=`` against what a user would otherwise write, on the example project's
service image, in one run.

    .venv/bin/python benchmarks/services.py [--reps 5] [--json PATH] [--keep-work]   # ~1.5 min; needs the engine

Figures, never verdicts: nothing here fails because something was slow.

The service image (``example_project/Dockerfile.service``: busybox httpd on 8080 serving
``hello world``, with a HEALTHCHECK every 2 s) is built once, untimed, as
``slimbench-<run>-service:latest``. Then, per repetition (the order of the sides rotating, so that
a busy spell on the machine hits each alike), each side is timed from start to exit:

- ``slimimage serves`` / ``slimimage healthy``: a pytest subprocess over a scratch folder, one test
  with ``@pytest.mark.slimimage(image="service", serves={...})`` (or ``healthy=True``) on an
  ``existing_image_fixture(TAG)`` (no build), ``-p no:cacheprovider --slimimage-require-engine``;
- ``testcontainers serves``: the hand-written equivalent, a pytest subprocess with the plugin
  disabled (``-p no:slimimage``): ``DockerContainer(TAG).with_bind_ports(8080, None)`` waiting for
  testcontainers' ``HttpWaitStrategy`` (200, body ``hello world``) at its default poll interval
  (``TC_POOLING_INTERVAL``, 1 s), the GET asserted again, the container removed;
  ``testcontainers serves, poll 0.25 s`` is the same test polling as often as the plugin does;
- ``docker-py healthy``: a hand-written poll of ``State.Health.Status`` (every 0.25 s, as the
  plugin) until ``healthy``, the container removed, in a pytest subprocess without the plugin;
- floors: ``pytest --co -q`` on an empty file with and without the plugin, and, in this process,
  ``docker run -d -p 127.0.0.1::8080 TAG`` + a urllib poll (every 0.05 s) until 200 + ``docker rm -f``.

Medians and minimums of ``--reps``; each side's ratio is against its hand-written counterpart
(``testcontainers serves`` for the serves rows and the floors, ``docker-py healthy`` for the
healthy rows). A table on stdout, JSON in ``benchmarks/results/services.json``. Every container
started from the image (``slimbench-<run>-...`` names, and any other from the tag) and the tag
itself (``noprune``: the build cache stays) are removed at the end, on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
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
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "example_project"
RESULTS = HERE / "results" / "services.json"
LABEL = "io.github.slimbench.run"
"""Every container the hand-written sides and the raw floor start carries this label (and a name
starting with the run's id)."""
PORT = 8080
BODY = "hello world"
RAW_POLL = 0.05

PLUGIN_SERVES = """\
import pytest

from pytest_slimimage import existing_image_fixture

service = existing_image_fixture({tag})


@pytest.mark.slimimage(image="service", serves={{"port": 8080, "http": "/", "body": "hello world"}})
def test_serves(service):
    pass
"""

PLUGIN_HEALTHY = """\
import pytest

from pytest_slimimage import existing_image_fixture

service = existing_image_fixture({tag})


@pytest.mark.slimimage(image="service", healthy=True)
def test_healthy(service):
    pass
"""

TESTCONTAINERS_SERVES = """\
import urllib.request
import uuid

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy


def test_serves():
    ready = (
        HttpWaitStrategy(8080, "/")
        .for_status_code(200)
        .for_response_predicate(lambda body: body.strip() == "hello world")
        .with_startup_timeout(30){poll}
    )
    container = (
        DockerContainer({tag}, name=f"{prefix}-tc-{{uuid.uuid4().hex[:8]}}", labels={labels})
        .with_bind_ports(8080, None)
        .waiting_for(ready)
    )
    with container:
        url = f"http://{{container.get_container_host_ip()}}:{{container.get_exposed_port(8080)}}/"
        with urllib.request.urlopen(url, timeout=2) as response:
            assert response.status == 200
            assert response.read().decode().strip() == "hello world"
"""

DOCKERPY_HEALTHY = """\
import time
import uuid

import docker


def test_healthy():
    client = docker.from_env()
    container = client.containers.run({tag}, detach=True, name=f"{prefix}-hc-{{uuid.uuid4().hex[:8]}}", labels={labels})
    try:
        deadline = time.monotonic() + 30
        while True:
            container.reload()
            status = container.attrs["State"]["Health"]["Status"]
            if status == "healthy":
                break
            assert status != "unhealthy", container.attrs["State"]["Health"]["Log"]
            assert container.status == "running", container.logs()
            assert time.monotonic() < deadline, f"not healthy within 30 s: {{status}}"
            time.sleep(0.25)
    finally:
        container.remove(force=True)
        client.close()
"""


@dataclass(frozen=True)
class Side:
    key: str
    label: str
    reference: str
    """The key of the hand-written side its ratio is against."""
    test_file: str = ""
    """Empty: timed in this process (the raw floor)."""
    argv: tuple[str, ...] = ()
    """pytest's arguments before the test file."""


PYTEST_Q = ("-q", "-p", "no:cacheprovider", "--durations=0", "--durations-min=0")
PLUGIN = (*PYTEST_Q, "--slimimage-require-engine")
NO_PLUGIN = (*PYTEST_Q, "-p", "no:slimimage")
SIDES = (
    Side("slimimage_serves", "pytest-slimimage serves=", "testcontainers_serves", "test_slimimage_serves.py", PLUGIN),
    Side(
        "testcontainers_serves",
        "testcontainers serves (HttpWaitStrategy, poll 1 s)",
        "testcontainers_serves",
        "test_testcontainers_serves.py",
        NO_PLUGIN,
    ),
    Side(
        "testcontainers_serves_fast",
        "testcontainers serves, poll 0.25 s",
        "testcontainers_serves",
        "test_testcontainers_serves_fast.py",
        NO_PLUGIN,
    ),
    Side("slimimage_healthy", "pytest-slimimage healthy=True", "dockerpy_healthy", "test_slimimage_healthy.py", PLUGIN),
    Side(
        "dockerpy_healthy", "docker-py healthy poll (0.25 s)", "dockerpy_healthy", "test_dockerpy_healthy.py", NO_PLUGIN
    ),
    Side(
        "floor_pytest_plugin",
        "floor: pytest --co -q, plugin loaded",
        "testcontainers_serves",
        "test_empty.py",
        ("--co", "-q", "-p", "no:cacheprovider"),
    ),
    Side(
        "floor_pytest_bare",
        "floor: pytest --co -q, no plugin",
        "testcontainers_serves",
        "test_empty.py",
        ("--co", "-q", "-p", "no:cacheprovider", "-p", "no:slimimage"),
    ),
    Side("floor_docker_run", "floor: docker run -d + urllib poll + rm -f", "testcontainers_serves"),
)


@dataclass
class Sample:
    wall: float
    ok: bool
    maxrss_kb: int = 0
    in_tests: float | None = None
    """Seconds pytest's --durations gave the test's setup, call and teardown (each in ``extra``)."""
    cpu_pressure: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def cpu_pressure() -> int | None:
    """Microseconds some task waited for a CPU since boot (Linux PSI), or None."""
    try:
        text = Path("/proc/pressure/cpu").read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(r"^some .*total=(\d+)", text, re.M)
    return int(match.group(1)) if match else None


def say(text: str) -> None:
    print(f"services: {text}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = f"slimbench-{uuid.uuid4().hex[:8]}"
        self.tag = f"{self.run_id}-service:latest"
        self.docker_cli = shutil.which("docker") or "/usr/bin/docker"
        self.pytest = Path(sys.executable).with_name("pytest")
        self.work = Path(tempfile.mkdtemp(prefix=f"{self.run_id}-"))
        self.project = self.work / "project"
        self.logs = self.work / "logs"
        self.client = docker.from_env(timeout=120)
        self.samples: dict[str, list[Sample]] = {s.key: [] for s in SIDES}
        self.problems: list[str] = []
        self.built = False

    # ---------------------------------------------------------------------------- set-up
    def build(self) -> dict[str, Any]:
        say(f"building example_project/Dockerfile.service as {self.tag} (not timed)")
        self.built = True  # from here on, the tag is removed whatever happens
        self.client.images.build(
            path=str(EXAMPLE), dockerfile="Dockerfile.service", tag=self.tag, rm=True, forcerm=True
        )
        attrs = self.client.api.inspect_image(self.tag)  # type: ignore[no-untyped-call]
        return {"dockerfile": "example_project/Dockerfile.service", "size": int(attrs["Size"])}

    def write_project(self) -> None:
        self.project.mkdir(parents=True)
        self.logs.mkdir()
        tag, prefix, labels = json.dumps(self.tag), self.run_id, repr({LABEL: self.run_id})
        files = {
            "pytest.ini": "[pytest]\n",
            "test_empty.py": "",
            "test_slimimage_serves.py": PLUGIN_SERVES.format(tag=tag),
            "test_slimimage_healthy.py": PLUGIN_HEALTHY.format(tag=tag),
            "test_testcontainers_serves.py": TESTCONTAINERS_SERVES.format(
                tag=tag, prefix=prefix, labels=labels, poll=""
            ),
            "test_testcontainers_serves_fast.py": TESTCONTAINERS_SERVES.format(
                tag=tag, prefix=prefix, labels=labels, poll="\n        .with_poll_interval(0.25)"
            ),
            "test_dockerpy_healthy.py": DOCKERPY_HEALTHY.format(tag=tag, prefix=prefix, labels=labels),
        }
        for name, text in files.items():
            (self.project / name).write_text(text, encoding="utf-8")

    def env(self) -> dict[str, str]:
        """Bytecode cached (in the scratch folder), as on a user's machine (this workplace sets
        PYTHONDONTWRITEBYTECODE); Ryuk off (its image cannot be pulled here; the plugin never uses it)."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        return {**env, "PYTHONPYCACHEPREFIX": str(self.work / "pycache"), "TESTCONTAINERS_RYUK_DISABLED": "true"}

    # ---------------------------------------------------------------------------- measuring
    def run_pytest(self, side: Side, log: Path) -> Sample:
        argv = [str(self.pytest), *side.argv, side.test_file]
        with open(log, "wb") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.env(), cwd=self.project
            )
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:
                proc.wait()  # Ctrl-C reached it too (same process group): let it clean up
                raise
            wall = time.perf_counter() - started
        rc = os.waitstatus_to_exitcode(status)
        text = log.read_text(encoding="utf-8", errors="replace")
        collect_only = "--co" in side.argv
        ok = rc in (0, 5) if collect_only else rc == 0 and bool(re.search(r"^1 passed", text, re.M))
        phases = {phase: float(s) for s, phase in re.findall(r"^(\d+\.\d+)s (setup|call|teardown)\s", text, re.M)}
        sample = Sample(wall, ok, int(usage.ru_maxrss), sum(phases.values()) if phases else None)
        sample.extra.update(phases)
        if not ok:
            last = [line for line in text.splitlines() if line.strip()][-3:]
            sample.extra["failure"] = f"rc {rc}: {' | '.join(last)}"
        return sample

    def raw_floor(self) -> Sample:
        name = f"{self.run_id}-raw-{uuid.uuid4().hex[:8]}"
        docker_cli = self.docker_cli
        ok = False
        started = time.perf_counter()
        try:
            run = [docker_cli, "run", "-d", "--name", name, "--label", f"{LABEL}={self.run_id}"]
            subprocess.run([*run, "-p", f"127.0.0.1::{PORT}", self.tag], check=True, capture_output=True)
            published = subprocess.run(
                [docker_cli, "port", name, f"{PORT}/tcp"], check=True, capture_output=True, text=True
            ).stdout
            url = f"http://127.0.0.1:{int(published.split()[0].rsplit(':', 1)[1])}/"
            deadline = started + 30
            while not ok and time.perf_counter() < deadline:
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        ok = response.status == 200 and response.read().decode().strip() == BODY
                except OSError:  # refused, reset by the engine's port proxy, no answer yet
                    pass
                if not ok:
                    time.sleep(RAW_POLL)
        finally:
            subprocess.run([docker_cli, "rm", "-f", name], capture_output=True)
        return Sample(time.perf_counter() - started, ok)

    def measure(self, side: Side, rep: int | None) -> Sample:
        tag = "warm-up" if rep is None else f"rep{rep + 1}"
        before = cpu_pressure()
        sample = self.run_pytest(side, self.logs / f"{side.key}-{tag}.log") if side.test_file else self.raw_floor()
        after = cpu_pressure()
        if before is not None and after is not None:
            sample.cpu_pressure = (after - before) / 1e6 / sample.wall
        if not sample.ok:
            self.problems.append(f"{side.key} {tag} did not pass: {sample.extra.get('failure', 'no 200 within 30 s')}")
        return sample

    def repetitions(self) -> None:
        say("warm-up: each side once, untimed (bytecode, the engine's and the page cache's first touches)")
        for side in SIDES:
            self.measure(side, None)
        for rep in range(self.args.reps):
            order = [*SIDES[rep % len(SIDES) :], *SIDES[: rep % len(SIDES)]]
            for side in order:
                sample = self.measure(side, rep)
                self.samples[side.key].append(sample)
            shown = ", ".join(f"{s.key} {self.samples[s.key][-1].wall:.2f}" for s in SIDES)
            say(f"rep {rep + 1}/{self.args.reps}: {shown}")

    # ---------------------------------------------------------------------------- cleanup
    def cleanup(self) -> list[str]:
        """Every container of this run (by name, label, or started from the tag), then the tag
        (noprune: the build cache and the base stay), then the scratch folder."""
        notes: list[str] = []
        found: dict[str, str] = {}
        filters: list[dict[str, Any]] = [{"name": self.run_id}, {"label": f"{LABEL}={self.run_id}"}]
        if self.built:
            filters.append({"ancestor": self.tag})
        for flt in filters:
            with contextlib.suppress(docker.errors.APIError):
                for container in self.client.containers.list(all=True, filters=flt):
                    found[str(container.id)] = str(container.name)
        for container_id, name in found.items():
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(container_id, force=True)
                notes.append(f"removed leftover container {name}")
        if self.built:
            with contextlib.suppress(docker.errors.ImageNotFound):
                self.client.images.remove(self.tag, noprune=True)
            with contextlib.suppress(docker.errors.ImageNotFound):
                self.client.api.inspect_image(self.tag)  # type: ignore[no-untyped-call]
                notes.append(f"image tag still present: {self.tag}")
        if self.args.keep_work:
            notes.append(f"kept the scratch folder {self.work} (logs in {self.logs})")
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        self.client.close()
        return notes

    # ---------------------------------------------------------------------------- main
    def main(self) -> int:
        started = time.monotonic()
        versions = {
            "engine": str(self.client.version().get("Version")),
            **{name: importlib.metadata.version(name) for name in ("pytest", "pytest-slimimage", "testcontainers")},
            "docker-py": importlib.metadata.version("docker"),
        }
        notes: list[str] = []
        image: dict[str, Any] = {}
        try:
            image = self.build()
            self.write_project()
            self.repetitions()
        finally:
            say("cleaning up")
            notes = self.cleanup()
        report = self.summarise(versions, image, notes)
        print_table(report)
        self.args.json.parent.mkdir(parents=True, exist_ok=True)
        self.args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {self.args.json}; whole benchmark {time.monotonic() - started:.0f} s")
        return 0

    def summarise(self, versions: dict[str, str], image: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        medians = {key: statistics.median(s.wall for s in found) for key, found in self.samples.items() if found}
        rows = []
        for side in SIDES:
            found = self.samples[side.key]
            if not found:
                continue
            in_tests = [s.in_tests for s in found if s.in_tests is not None]
            reference = medians.get(side.reference)
            rows.append(
                {
                    "side": side.key,
                    "label": side.label,
                    "median": round(medians[side.key], 3),
                    "min": round(min(s.wall for s in found), 3),
                    "all": [round(s.wall, 3) for s in found],
                    "ratio": round(medians[side.key] / reference, 2) if reference else None,
                    "reference": side.reference,
                    "in_tests_median": round(statistics.median(in_tests), 3) if in_tests else None,
                    **{
                        f"{phase}_median": round(statistics.median(s.extra[phase] for s in found), 3)
                        for phase in ("setup", "call")
                        if in_tests and all(phase in s.extra for s in found)
                    },
                    "peak_mb": round(max(s.maxrss_kb for s in found) / 1024, 1) if side.test_file else None,
                    "passed": sum(s.ok for s in found),
                    "command": " ".join(["pytest", *side.argv, side.test_file]) if side.test_file else "",
                }
            )
        pressures = [s.cpu_pressure for found in self.samples.values() for s in found if s.cpu_pressure is not None]
        return {
            "run": self.run_id,
            "image": {**image, "tag": self.tag},
            "reps": self.args.reps,
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "python": platform.python_version(),
            "versions": versions,
            "cpu_pressure_median": round(statistics.median(pressures), 3) if pressures else None,
            "rows": rows,
            "problems": self.problems,
            "notes": notes,
        }


def print_table(report: dict[str, Any]) -> None:
    size = report["image"].get("size")
    print(
        f"service image {size / 1e6:.1f} MB; median and min of {report['reps']}; {report['cores']} cores;"
        f" engine {report['versions']['engine']}, testcontainers {report['versions']['testcontainers']}"
        if size
        else "no image built"
    )
    labels = {row["side"]: row["label"] for row in report["rows"]}
    width = max([len(row["label"]) for row in report["rows"]] + [4])
    print(f"{'side':<{width}} {'median':>8} {'min':>8} {'setup':>7} {'call':>7} {'ratio':>7}  vs")
    for row in report["rows"]:
        setup, call = (f"{row[k]:.2f}s" if k in row else "-" for k in ("setup_median", "call_median"))
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        vs = "" if row["reference"] == row["side"] else labels.get(row["reference"], row["reference"])
        print(
            f"{row['label']:<{width}} {row['median']:>7.2f}s {row['min']:>7.2f}s {setup:>7} {call:>7} {ratio:>7}  {vs}"
        )
    if report["cpu_pressure_median"] is not None:
        print(f"CPU contention while timing (PSI 'some'): median {report['cpu_pressure_median']:.0%} of the wall time")
    for problem in report["problems"]:
        print(f"problem: {problem}")
    for note in report["notes"]:
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of every side (median and min reported)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch folder (each run's pytest output)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return Bench(args).main()


if __name__ == "__main__":
    sys.exit(main())
