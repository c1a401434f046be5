"""pytest-slimimage against the tools a user would otherwise chain, on the same images, in one run.

Run it with ``bash benchmarks/run.sh`` (bootstraps the project, installs the anchors into
``benchmarks/.venv-anchors``, then runs this file). See ``benchmarks/README.md`` for what each
number means.

What it does, in order:

1. builds the example project's naive, multi-stage and static images once, tagged
   ``slimbench-<run>-<name>:latest`` (builds are never timed);
2. per repetition: the floors (``pytest --co -q`` on an empty file, ``docker run``, raw
   ``docker save`` and ``docker export`` to /dev/null), the anchors (``hadolint``, ``disl``,
   ``dive --ci``, ``container-structure-test``; one process per tool per image), and
   pytest-slimimage (a pytest subprocess over ``benchmarks/project``: one process per image and
   one for all three) cold (empty layer cache) and warm (the cache a cold run just filled), with
   ``SLIMIMAGE_LAYER_SOURCE`` = export, storage, auto;
3. a ~1 GB image (``FROM busybox:latest`` + 1 GB of random files) for the peak-memory target;
4. medians, ratios against the targets, a table on stdout and ``benchmarks/results/latest.json``;
5. removes every image tag (``noprune``), container and file it made -- never a base image.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "example_project"
PROJECT_TEMPLATE = HERE / "project"
RESULTS = HERE / "results" / "latest.json"
PATHS = ("export", "storage", "auto")
LABEL = "io.github.slimbench.run"
"""Every image the benchmark builds carries this label, valued with the run's id."""

TARGETS = {
    "cold_export": 0.8,
    "cold_storage": 0.4,
    "cold_auto": 0.4,
    "warm": 0.25,
    "scan_rate": 0.9,
    "peak_memory_mb": 100.0,
}
"""ours / anchors at most (cold through the engine API, the storage fast path, auto -- which picks
the storage on an engine whose overlay2 store this process can read -- and warm); the full layer
scan rate as a share of the raw ``docker save`` stream rate, at least; peak memory (MB), under."""

COMPILER_PATHS = ("/usr/bin/gcc", "/usr/bin/cc", "/usr/bin/ld", "/usr/bin/as", "/usr/lib/gcc")
"""What a container-structure-test user lists to say "no compiler" (it has no globs, no search)."""


@dataclass(frozen=True)
class ImageCase:
    """One image under test, and what both sides are asked about it."""

    name: str
    dockerfile: str
    """Relative to the build context (the example project, or the generated 1 GB image's folder)."""
    max_size: str
    final_base: str
    intended_cmd: tuple[str, ...]
    """The exec-form CMD the Dockerfile means (container-structure-test's metadata test)."""
    dpkg: bool
    """The final filesystem has a dpkg database (container-structure-test's fileContent test)."""
    context: str = ""
    tag: str = ""

    def checks(self) -> dict[str, Any]:
        """The ``slimimage`` marker's keywords: every check that applies."""
        return {
            "max_size": self.max_size,
            "final_base": self.final_base,
            "exec_form": True,
            "no_compilers": True,
            "runnable": True,
            "lint": True,
            "max_waste": "10%",
            "runs": "hello world",
        }


CASES = (
    ImageCase("naive", "Dockerfile.naive", "500MB", "gcc", ("./hello",), dpkg=True),
    ImageCase("multistage", "Dockerfile.multistage", "150MB", "debian:bookworm-slim", ("./hello",), dpkg=True),
    ImageCase("static", "Dockerfile.static", "1MB", "scratch", ("/hello",), dpkg=False),
)

BIG_DOCKERFILE = """\
# ~1 GB of incompressible files in one layer on busybox (pytest-slimimage benchmark, removed afterwards).
FROM busybox:latest
LABEL {label}={run}
CMD ["echo", "hello world"]
RUN for i in 1 2 3 4; do head -c 250000000 /dev/urandom > /big$i; done
"""
"""The big layer comes last so that removing the image (noprune) frees it; the label makes the
LABEL and CMD intermediates this run's own, so they can be removed too."""


# ----------------------------------------------------------------------------------- processes
@dataclass
class Sample:
    """One timed process."""

    what: str
    image: str
    wall: float
    rc: int
    maxrss_kb: int
    extra: dict[str, Any] = field(default_factory=dict)


def run_timed(
    argv: Sequence[str],
    *,
    log: Path | None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    discard_stdout: bool = False,
) -> tuple[float, int, int]:
    """Run ``argv`` to completion: (wall seconds, exit code, peak RSS in kB of it and its waited-for
    children, from ``wait4``). Output goes to ``log`` (appended), or to /dev/null; with
    ``discard_stdout``, stdout goes to /dev/null whatever ``log`` is (``docker save > /dev/null``)."""
    with open(log if log is not None else os.devnull, "ab") as out:
        stdout = subprocess.DEVNULL if discard_stdout else out
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=out, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, int(usage.ru_maxrss)


def cpu_pressure() -> int | None:
    """Microseconds some task waited for a CPU since boot (Linux PSI), or None."""
    try:
        text = Path("/proc/pressure/cpu").read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(r"^some .*total=(\d+)", text, re.M)
    return int(match.group(1)) if match else None


def check_call(argv: Sequence[str], **kwargs: Any) -> str:
    return str(subprocess.run(list(argv), check=True, capture_output=True, text=True, **kwargs).stdout)


def median(values: Iterable[float]) -> float | None:
    found = list(values)
    return statistics.median(found) if found else None


# ------------------------------------------------------------------------------------ the bench
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = f"slimbench-{uuid.uuid4().hex[:8]}"
        self.anchors = Path(args.anchors).resolve()
        self.pytest = Path(sys.executable).with_name("pytest")
        self.docker_cli = shutil.which("docker") or "/usr/bin/docker"
        self.work = Path(tempfile.mkdtemp(prefix=f"{self.run_id}-"))
        self.project = self.work / "project"
        self.logs = self.work / "logs"
        self.client = docker.from_env(timeout=600)
        self.samples: list[Sample] = []
        self.cases: list[ImageCase] = []
        self.big: ImageCase | None = None
        self.sizes: dict[str, int] = {}
        self.layers: dict[str, int] = {}
        self.created_tags: list[str] = []
        self.created_containers: list[str] = []
        self.ours_failures: list[str] = []
        self.findings: dict[str, list[str]] = {}
        """What each side flagged, per image: ours (failed checks), anchors (tools that exited non-zero)."""
        self.started = time.monotonic()

    # ---------------------------------------------------------------------------- set-up
    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def preflight(self) -> dict[str, str]:
        """Each anchor answers offline (versions recorded); the engine answers."""
        versions: dict[str, str] = {}
        probes = {
            "hadolint": [str(self.anchors / "hadolint"), "--version"],
            "dive": [str(self.anchors / "dive"), "--version"],
            "container-structure-test": [str(self.anchors / "container-structure-test"), "version"],
            "disl": [str(self.anchors / "disl"), "--version"],
            "docker-cli": [self.docker_cli, "version", "--format", "{{.Client.Version}}"],
        }
        for name, argv in probes.items():
            try:
                versions[name] = check_call(argv).strip().splitlines()[0]
            except (OSError, subprocess.CalledProcessError) as exc:
                raise SystemExit(f"bench: {name} does not work here ({' '.join(argv)}): {exc}") from None
        engine = self.client.version()
        versions["engine"] = str(engine.get("Version"))
        versions["pytest-slimimage"] = check_call(
            [sys.executable, "-c", "import importlib.metadata as m;print(m.version('pytest-slimimage'))"]
        ).strip()
        return versions

    def build(self, case: ImageCase, context: Path) -> ImageCase:
        tag = f"{self.run_id}-{case.name}:latest"
        self.say(f"building {case.name} ({case.dockerfile}) as {tag}")
        self.client.images.build(
            path=str(context), dockerfile=case.dockerfile, tag=tag, rm=True, forcerm=True, labels={LABEL: self.run_id}
        )
        self.created_tags.append(tag)
        attrs = self.client.api.inspect_image(tag)  # type: ignore[no-untyped-call]
        self.sizes[case.name] = int(attrs["Size"])
        self.layers[case.name] = len(attrs["RootFS"]["Layers"])
        return ImageCase(**{**asdict(case), "tag": tag, "context": str(context), "intended_cmd": case.intended_cmd})

    def write_project(self) -> None:
        self.project.mkdir(parents=True)
        self.logs.mkdir()
        for name in ("conftest.py", "test_images.py"):
            shutil.copy(PROJECT_TEMPLATE / name, self.project / name)
        (self.project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (self.project / "test_empty.py").write_text("", encoding="utf-8")
        for case in self.cases:
            self.write_images_json(f"{case.name}.json", [case])
            self.write_cst_config(case)
        self.write_images_json("all.json", self.cases)
        self.write_declarative(self.cases)

    def write_images_json(self, filename: str, cases: Sequence[ImageCase]) -> Path:
        entries = [
            {
                "name": c.name,
                "tag": c.tag,
                "dockerfile": str(Path(c.context) / c.dockerfile),
                "checks": c.checks(),
            }
            for c in cases
        ]
        path = self.work / filename
        path.write_text(json.dumps(entries, indent=1), encoding="utf-8")
        return path

    def write_declarative(self, cases: Sequence[ImageCase]) -> Path:
        """The same checks in the declarative form: ``slimimage.toml`` with ``image =`` tables
        (one pytest item per check), in its own folder, given to pytest explicitly."""
        lines: list[str] = []
        for c in cases:
            lines += [f"[images.{c.name}]", f"image = {json.dumps(c.tag)}"]
            lines.append(f"dockerfile = {json.dumps(str(Path(c.context) / c.dockerfile))}")
            lines += [f"{key} = {json.dumps(value)}" for key, value in c.checks().items()]  # JSON scalars are TOML
            lines.append("")
        folder = self.project / "declarative"
        folder.mkdir(exist_ok=True)
        path = folder / "slimimage.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path

    def shipped_argv(self, tag: str) -> tuple[list[str], str]:
        config = self.client.api.inspect_image(tag)["Config"]  # type: ignore[no-untyped-call]
        return [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])], str(config.get("WorkingDir") or "/")

    def write_cst_config(self, case: ImageCase) -> Path:
        """container-structure-test's tests equivalent to ours, as a user writes them (JSON is YAML)."""
        argv, workdir = self.shipped_argv(case.tag)
        program = argv[0]
        if "/" in program and not program.startswith("/"):
            program = os.path.normpath(os.path.join(workdir, program))
        files: list[dict[str, Any]] = [{"name": f"no {p}", "path": p, "shouldExist": False} for p in COMPILER_PATHS]
        if program.startswith("/"):
            files.append({"name": "program", "path": program, "shouldExist": True, "isExecutableBy": "any"})
        config: dict[str, Any] = {
            "schemaVersion": "2.0.0",
            "commandTests": [
                {  # run as shipped: the image's own ENTRYPOINT + CMD
                    "name": "runs as shipped",
                    "command": argv[0],
                    "args": argv[1:],
                    "expectedOutput": ["^hello world\\n?$"],
                }
            ],
            "fileExistenceTests": files,
            "metadataTest": {"cmd": list(case.intended_cmd), "entrypoint": []},
        }
        if case.dpkg:
            config["fileContentTests"] = [
                {
                    "name": "no toolchain package",
                    "path": "/var/lib/dpkg/status",
                    "excludedContents": ["Package: (gcc|cpp|binutils)(-[0-9]+)?\\n"],
                }
            ]
        path = self.work / f"cst-{case.name}.yaml"
        path.write_text(json.dumps(config, indent=1), encoding="utf-8")
        return path

    # ---------------------------------------------------------------------------- measuring
    def record(self, what: str, image: str, argv: Sequence[str], **kwargs: Any) -> Sample:
        log = self.logs / f"{what.replace(' ', '_').replace('/', '_')}-{image}.log"
        before = cpu_pressure()
        wall, rc, rss = run_timed(argv, log=log, **kwargs)
        after = cpu_pressure()
        sample = Sample(what, image, wall, rc, rss)
        if before is not None and after is not None:
            sample.extra["cpu_pressure"] = (after - before) / 1e6 / wall
        self.samples.append(sample)
        return sample

    def anchors_for(self, case: ImageCase) -> None:
        a = self.anchors
        self.record("anchor hadolint", case.name, [str(a / "hadolint"), str(Path(case.context) / case.dockerfile)])
        self.record("anchor disl", case.name, [str(a / "disl"), case.tag, case.max_size])
        dive = [str(a / "dive"), case.tag, "--ci", "--source", "docker"]
        self.record("anchor dive", case.name, [*dive, "--lowestEfficiency=0.9", "--highestUserWastedPercent=0.1"])
        cst = [str(a / "container-structure-test"), "test", "--image", case.tag]
        self.record(
            "anchor container-structure-test", case.name, [*cst, "--config", str(self.work / f"cst-{case.name}.yaml")]
        )

    def raw_streams(self, case: ImageCase) -> None:
        self.record("raw docker save", case.name, [self.docker_cli, "save", case.tag], discard_stdout=True)
        name = f"{self.run_id}-export-{case.name}-{uuid.uuid4().hex[:6]}"
        check_call([self.docker_cli, "create", "--name", name, case.tag])
        self.created_containers.append(name)
        try:
            self.record("raw docker export", case.name, [self.docker_cli, "export", name], discard_stdout=True)
        finally:
            check_call([self.docker_cli, "rm", "-f", name])
            self.created_containers.remove(name)

    def container_floor(self, case: ImageCase) -> None:
        name = f"{self.run_id}-run-{case.name}-{uuid.uuid4().hex[:6]}"
        self.created_containers.append(name)
        try:
            self.record(
                "floor docker run",
                case.name,
                [self.docker_cli, "run", "--rm", "--name", name, "--network", "none", case.tag],
            )
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                check_call([self.docker_cli, "rm", "-f", name])
            self.created_containers.remove(name)

    def python_env(self, **extra: str) -> dict[str, str]:
        """The environment of a pytest run: bytecode cached (in the scratch folder), as on a user's
        machine; this workplace sets PYTHONDONTWRITEBYTECODE, which would make every run compile
        the (editable, so uncompiled) plugin again."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        return {**env, "PYTHONPYCACHEPREFIX": str(self.work / "pycache"), **extra}

    def pytest_floor(self) -> None:
        argv = [str(self.pytest), "--co", "-q", "test_empty.py"]
        self.record("floor pytest --co", "-", argv, cwd=self.project, env=self.python_env())

    def warm_up(self) -> None:
        """Untimed: the plugin's bytecode, the engine's and the page cache's first touches."""
        env = self.python_env(SLIMBENCH_IMAGES=str(self.work / "all.json"), SLIMIMAGE_LAYER_SOURCE="storage")
        report = self.work / "warm-up-report.json"
        argv = [str(self.pytest), "-q", "-o", f"cache_dir={self.work / 'caches' / 'warm-up'}", "test_images.py"]
        run_timed([*argv, "--slimimage-report", str(report)], log=self.logs / "warm-up.log", env=env, cwd=self.project)
        shutil.rmtree(self.work / "caches" / "warm-up", ignore_errors=True)
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            for record in json.loads(report.read_text(encoding="utf-8"))["images"]:
                failed = sorted(name for name, verdict in record["checks"].items() if verdict != "passed")
                self.findings[f"ours {record['name']}"] = failed

    def ours(self, mode: str, path: str, image: str, images_json: str, cache: Path) -> Sample:
        """One pytest run, as a user runs it; ``cache`` is pytest's cache dir (the layer cache lives in it)."""
        timings = self.work / f"timings-{uuid.uuid4().hex[:8]}.json"
        env = self.python_env(SLIMBENCH_TIMINGS=str(timings), SLIMIMAGE_LAYER_SOURCE=path)
        if images_json == "declarative":  # slimimage.toml: the conftest then has no image of its own
            what, target = "declarative", "declarative/slimimage.toml"
        else:
            what, target = "ours", "test_images.py"
            env["SLIMBENCH_IMAGES"] = str(self.work / images_json)
        argv = [str(self.pytest), "-q", "-o", f"cache_dir={cache}", target]
        sample = self.record(f"{what} {mode} {path}", image, argv, env=env, cwd=self.project)
        log = (self.logs / f"{what}_{mode}_{path}-{image}.log").read_text(encoding="utf-8", errors="replace")
        summary = re.findall(r"^=*\s*((?:\d+ (?:passed|failed|error|errors|skipped)[, ]*)+)", log, re.M)
        sample.extra["summary"] = summary[-1].strip() if summary else "?"
        if "error" in sample.extra["summary"] or not summary:
            self.ours_failures.append(f"{mode} {path} {image}: {sample.extra['summary']} (log {self.logs})")
        with contextlib.suppress(OSError, ValueError):
            sample.extra["timings"] = json.loads(timings.read_text(encoding="utf-8"))
            timings.unlink()
        return sample

    def ours_cold_warm(self, image: str, images_json: str, order: Sequence[str], rep: int) -> None:
        """Cold through each layer source (a fresh, empty pytest cache each), then warm: the same
        run again on the cache the cold run of that source just filled."""
        caches = {path: self.work / "caches" / f"{path}-{image}-{images_json}-{rep}" for path in order}
        for path in order:
            self.ours("cold", path, image, images_json, caches[path])
        for path in order:
            self.ours("warm", path, image, images_json, caches[path])
            shutil.rmtree(caches[path], ignore_errors=True)

    def repetition(self, rep: int) -> None:
        """Everything once, interleaved image by image (so that a busy spell on the machine hits
        both sides alike); the order of the layer sources rotates with ``rep``."""
        order = [*PATHS[rep % len(PATHS) :], *PATHS[: rep % len(PATHS)]]
        self.pytest_floor()
        for case in self.cases:
            self.say(f"repetition {rep + 1}/{self.args.reps}: {case.name}")
            self.container_floor(case)
            self.raw_streams(case)
            self.anchors_for(case)
            self.ours_cold_warm(case.name, f"{case.name}.json", order, rep)
        self.say(f"repetition {rep + 1}/{self.args.reps}: all three images in one pytest process")
        self.ours_cold_warm("overall", "all.json", order, rep)
        self.ours_cold_warm("overall", "declarative", ["auto"], rep)

    def big_image(self) -> None:
        """The ~1 GB case: one run per source, cold, then warm; raw streams once."""
        context = self.work / "big"
        context.mkdir()
        (context / "Dockerfile").write_text(BIG_DOCKERFILE.format(label=LABEL, run=self.run_id), encoding="utf-8")
        case = ImageCase("big", "Dockerfile", "1.1GB", "busybox", ("echo", "hello world"), dpkg=False)
        self.big = self.build(case, context)
        self.write_images_json("big.json", [self.big])
        self.raw_streams(self.big)
        cache = self.work / "caches" / "big"
        for path in PATHS:
            shutil.rmtree(cache, ignore_errors=True)
            self.say(f"1 GB image: cold {path}")
            self.ours("cold", path, "big", "big.json", cache)
        self.say("1 GB image: warm")
        self.ours("warm", "auto", "big", "big.json", cache)
        shutil.rmtree(cache, ignore_errors=True)

    # ---------------------------------------------------------------------------- cleanup
    def cleanup(self) -> list[str]:
        """Remove this run's containers and image tags (noprune), the 1 GB image's own
        intermediates (labelled with this run), and the scratch folder. Never a base image."""
        notes: list[str] = []
        for name in list(self.created_containers):
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(name, force=True)
        leftovers = self.client.containers.list(all=True, filters={"name": self.run_id})
        for container in leftovers:
            container.remove(force=True)
            notes.append(f"removed leftover container {container.name}")
        big_parents: list[str] = []
        if self.big is not None:
            with contextlib.suppress(docker.errors.ImageNotFound):
                parent = str(self.client.api.inspect_image(self.big.tag).get("Parent") or "")  # type: ignore[no-untyped-call]
                while parent:
                    attrs = self.client.api.inspect_image(parent)  # type: ignore[no-untyped-call]
                    if ((attrs.get("Config") or {}).get("Labels") or {}).get(LABEL) != self.run_id:
                        break  # the base (busybox) or anything not made by this run: kept
                    big_parents.append(parent)
                    parent = str(attrs.get("Parent") or "")
        for tag in self.created_tags:
            with contextlib.suppress(docker.errors.ImageNotFound):
                self.client.api.remove_image(tag, noprune=True)
        for image_id in big_parents:  # top first: each is the child of the next
            try:
                self.client.api.remove_image(image_id, noprune=True)
            except docker.errors.APIError as exc:
                notes.append(f"kept intermediate {image_id[:19]}: {exc.explanation}")
        remaining = [t for t in self.created_tags if self.client.images.list(name=t.split(":")[0])]
        if remaining:
            notes.append(f"image tags still present: {remaining}")
        if not self.args.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            notes.append(f"kept the scratch folder {self.work}")
        return notes

    # ---------------------------------------------------------------------------- main
    def main(self) -> int:
        versions = self.preflight()
        self.say(f"run {self.run_id}; anchors: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        notes: list[str] = []
        try:
            self.cases = [self.build(c, EXAMPLE) for c in CASES]
            self.write_project()
            self.warm_up()
            for rep in range(self.args.reps):
                self.repetition(rep)
            if not self.args.skip_big:
                self.big_image()
        finally:
            self.say("cleaning up")
            notes = self.cleanup()
        results = summarise(self, versions, notes)
        print_table(results)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
        print(f"\nwrote {RESULTS.relative_to(REPO)}; whole benchmark {time.monotonic() - self.started:.0f} s")
        return 0


# ------------------------------------------------------------------------------------ results
def _select(samples: Sequence[Sample], what: str, image: str) -> list[Sample]:
    return [s for s in samples if s.what == what and s.image == image]


def _med(samples: Sequence[Sample], what: str, image: str) -> float | None:
    return median(s.wall for s in _select(samples, what, image))


def _timing(sample: Sample, kind: str) -> float:
    return float(sum(t["seconds"] for t in sample.extra.get("timings", []) if t["kind"] == kind))


def _summary(chosen: Sequence[Sample]) -> dict[str, Any]:
    """Medians of a pytest-slimimage variant's runs: wall time and where it went; peak memory."""
    return {
        "wall": median(s.wall for s in chosen),
        "maxrss_mb": max(s.maxrss_kb for s in chosen) / 1024,
        "index_layers": median(_timing(s, "index_layers") for s in chosen),
        "run": median(_timing(s, "run") for s in chosen),
        "merge_layers": median(_timing(s, "merge_layers") for s in chosen),
        "compute_waste": median(_timing(s, "compute_waste") for s in chosen),
        "tests": median(_timing(s, "test") for s in chosen),
        "summary": chosen[-1].extra.get("summary"),
    }


def target_of(key: str) -> float:
    """The ratio target of a variant key (``cold_export``, ``declarative_warm_auto``...)."""
    mode, path = key.removeprefix("declarative_").split("_", 1)
    return TARGETS["warm"] if mode == "warm" else TARGETS[f"cold_{path}"]


def summarise(bench: Bench, versions: dict[str, str], notes: list[str]) -> dict[str, Any]:
    samples = bench.samples
    names = [c.name for c in bench.cases]
    tools = ("hadolint", "disl", "dive", "container-structure-test")
    anchors: dict[str, Any] = {}
    for image in names:
        per_tool = {t: _med(samples, f"anchor {t}", image) for t in tools}
        reps = zip(*(_select(samples, f"anchor {t}", image) for t in tools), strict=True)
        combined = median(sum(s.wall for s in rep) for rep in reps)
        flagged = sorted(
            {s.what.removeprefix("anchor ") for t in tools for s in _select(samples, f"anchor {t}", image) if s.rc != 0}
        )
        anchors[image] = {"tools": per_tool, "combined": combined, "flagged": flagged}
        bench.findings[f"anchors {image}"] = flagged
    per_rep_total = [
        sum(vals)
        for vals in zip(
            *(
                [
                    sum(s.wall for s in rep)
                    for rep in zip(*(_select(samples, f"anchor {t}", i) for t in tools), strict=True)
                ]
                for i in names
            ),
            strict=True,
        )
    ]
    anchors["overall"] = {"combined": median(per_rep_total), "tools": {}}

    ours: dict[str, Any] = {}
    forms = (("ours", ""), ("declarative", "declarative_"))
    for (form, prefix), mode, path in itertools.product(forms, ("cold", "warm"), PATHS):
        key = f"{prefix}{mode}_{path}"
        ours[key] = {}
        for image in [*names, "overall", "big"]:
            chosen = _select(samples, f"{form} {mode} {path}", image)
            if chosen:
                ours[key][image] = _summary(chosen)
        if not ours[key]:
            del ours[key]
    floors: dict[str, Any] = {
        "pytest_collect_only": _med(samples, "floor pytest --co", "-"),
        "docker_run": {i: _med(samples, "floor docker run", i) for i in names},
        "docker_save": {i: _med(samples, "raw docker save", i) for i in [*names, "big"]},
        "docker_export": {i: _med(samples, "raw docker export", i) for i in [*names, "big"]},
    }
    ratios: dict[str, dict[str, float | None]] = {}
    for key, per_image in ours.items():
        ratios[key] = {}
        for image, measured in per_image.items():
            base = anchors.get(image, {}).get("combined")
            ratios[key][image] = measured["wall"] / base if base else None

    scan: dict[str, Any] = {}
    for image in [*names, "big"]:
        size = bench.sizes.get(image)
        save = floors["docker_save"].get(image)
        export = floors["docker_export"].get(image)
        if not size or not save:
            continue
        raw_rate = size / save
        row: dict[str, Any] = {"bytes": size, "raw_save_mb_s": raw_rate / 1e6}
        if export:
            row["raw_export_mb_s"] = size / export / 1e6
        for path in ("export", "storage", "auto"):
            seconds = ours.get(f"cold_{path}", {}).get(image, {}).get("index_layers")
            if seconds:
                row[f"scan_{path}_s"] = seconds
                row[f"scan_{path}_mb_s"] = size / seconds / 1e6
                row[f"scan_{path}_vs_save"] = (size / seconds) / raw_rate
        scan[image] = row

    big_rss = [s.maxrss_kb / 1024 for s in samples if s.what.startswith("ours") and s.image == "big"]
    example_rss = [s.maxrss_kb / 1024 for s in samples if s.what.startswith("ours") and s.image != "big"]
    anchors_rss = {t: max((s.maxrss_kb for s in samples if s.what == f"anchor {t}"), default=0) / 1024 for t in tools}
    memory = {
        "ours_peak_mb_examples": max(example_rss, default=None),
        "ours_peak_mb_big": max(big_rss, default=None),
        "ours_big_by_run": {
            f"{s.what}": s.maxrss_kb / 1024 for s in samples if s.image == "big" and s.what.startswith("ours")
        },
        "anchors_peak_mb": anchors_rss,
    }
    pressures = [s.extra["cpu_pressure"] for s in samples if "cpu_pressure" in s.extra]
    contention = {
        "cpu_pressure_median": median(pressures),
        "cpu_pressure_max": max(pressures, default=None),
        "note": "share of each sample's wall time in which some task waited for a CPU (Linux PSI);"
        " includes the benchmark's own parallelism (a scan and a container run on 2 cores)",
    }
    verdicts = _verdicts(ratios, scan, memory)
    return {
        "run": bench.run_id,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "reps": bench.args.reps,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), **versions},
        "images": {
            i: {"tag": f"{bench.run_id}-{i}:latest", "size": bench.sizes.get(i), "layers": bench.layers.get(i)}
            for i in [*names, "big"]
            if i in bench.sizes
        },
        "targets": TARGETS,
        "floors": floors,
        "anchors": anchors,
        "ours": ours,
        "ratios": ratios,
        "scan": scan,
        "memory": memory,
        "contention": contention,
        "findings": bench.findings,
        "verdicts": verdicts,
        "problems": bench.ours_failures,
        "notes": notes,
        "samples": [asdict(s) for s in samples],
    }


def _verdicts(
    ratios: dict[str, dict[str, float | None]], scan: dict[str, Any], memory: dict[str, Any]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    keys = [f"{m}_{p}" for m in ("cold", "warm") for p in PATHS] + ["declarative_cold_auto", "declarative_warm_auto"]
    for key in keys:
        if key not in ratios:
            continue
        value = ratios[key].get("overall")
        target = target_of(key)
        per_image = {i: v for i, v in ratios.get(key, {}).items() if i not in ("overall", "big") and v is not None}
        out.append(
            {
                "what": f"{key} ours/anchors (overall)",
                "value": value,
                "target": f"<= {target}x",
                "met": None if value is None else value <= target,
                "per_image": {i: {"value": v, "met": v <= target} for i, v in per_image.items()},
            }
        )
    for image in ("naive", "big"):
        for path in ("export", "storage"):
            value = scan.get(image, {}).get(f"scan_{path}_vs_save")
            out.append(
                {
                    "what": f"scan rate {path} vs raw docker save ({image})",
                    "value": value,
                    "target": f">= {TARGETS['scan_rate']:.0%}",
                    "met": None if value is None else value >= TARGETS["scan_rate"],
                }
            )
    peak = memory.get("ours_peak_mb_big")
    out.append(
        {
            "what": "peak memory, 1 GB image (MB)",
            "value": peak,
            "target": f"< {TARGETS['peak_memory_mb']:.0f}",
            "met": None if peak is None else peak < TARGETS["peak_memory_mb"],
        }
    )
    return out


# -------------------------------------------------------------------------------------- table
def _s(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _mb(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _rows(header: Sequence[str], rows: Iterable[Sequence[str]], left: Sequence[int] = (0,)) -> Iterator[str]:
    """Rows as aligned text: columns in ``left`` flush left, the others (numbers) flush right."""
    table = [list(header), *map(list, rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for n, row in enumerate(table):
        cells = (cell.ljust(widths[i]) if i in left else cell.rjust(widths[i]) for i, cell in enumerate(row))
        yield "  ".join(cells).rstrip()
        if n == 0:
            yield "  ".join("-" * w for w in widths).rstrip()


def print_table(r: dict[str, Any]) -> None:
    images = [i for i in r["images"] if i != "big"]
    cols = [*images, "overall"]
    m = r["machine"]
    print(
        f"\npytest-slimimage benchmark {r['run']} -- median of {r['reps']} runs; {m['cores']} cores,"
        f" engine {m['engine']}, docker CLI {m['docker-cli']}, Python {m['python']}"
    )
    print("images: " + ", ".join(f"{i} {_mb(v['size'])} ({v['layers']} layers)" for i, v in r["images"].items()))
    print("seconds, wall clock; 'overall' = the three images: anchors summed, ours in ONE pytest process\n")

    f = r["floors"]
    rows = [
        ["pytest --co -q (empty file)", *[_s(f["pytest_collect_only"]) for _ in images]],
        ["docker run --rm (one container)", *[_s(f["docker_run"][i]) for i in images]],
        ["docker save > /dev/null", *[_s(f["docker_save"][i]) for i in images]],
        ["docker export > /dev/null", *[_s(f["docker_export"][i]) for i in images]],
    ]
    print("\n".join(_rows(["floors / raw streams", *images], rows)), end="\n\n")

    a = r["anchors"]
    rows = [
        [f"{t}", *[_s(a[i]["tools"][t]) for i in images], ""]
        for t in ("hadolint", "disl", "dive", "container-structure-test")
    ]
    rows.append(["anchors combined (sum)", *[_s(a[i]["combined"]) for i in cols]])
    print("\n".join(_rows(["anchors (one process each)", *cols], rows)), end="\n\n")

    rows = []
    for key, per in r["ours"].items():
        if not any(i in per for i in cols):
            continue
        rows.append([f"{key.replace('_', ' ')}", *[_s(per.get(i, {}).get("wall")) for i in cols]])
        target = target_of(key)
        rows.append([f"  ratio ours/anchors (target <= {target:.2f}x)", *[_x(r["ratios"][key].get(i)) for i in cols]])
    print("\n".join(_rows(["pytest-slimimage (pytest process)", *cols], rows)), end="\n\n")

    rows = []
    for key in (
        "cold_export",
        "cold_storage",
        "cold_auto",
        "warm_auto",
        "declarative_cold_auto",
        "declarative_warm_auto",
    ):
        for i in [*cols, "big"]:
            row = r["ours"].get(key, {}).get(i)
            if row is None:
                continue
            outside = row["wall"] - row["tests"]
            rows.append(
                [
                    f"{key} {i}",
                    _s(row["wall"]),
                    _s(outside),
                    _s(row["tests"]),
                    _s(row["index_layers"]),
                    _s(row["run"]),
                    _s(row["merge_layers"]),
                    _s(row["compute_waste"]),
                    f"{row['maxrss_mb']:.0f}",
                    row["summary"] or "?",
                ]
            )
    header = [
        "where the time goes",
        "wall",
        "pytest+startup",
        "tests",
        "index_layers",
        "run (overlaps)",
        "merge",
        "waste",
        "peak MB",
        "pytest says",
    ]
    print("\n".join(_rows(header, rows)), end="\n\n")

    rows = []
    for i, row in r["scan"].items():
        rows.append(
            [
                i,
                _mb(row["bytes"]),
                f"{row['raw_save_mb_s']:.0f}",
                f"{row.get('raw_export_mb_s', 0):.0f}",
                *(
                    f"{row[f'scan_{p}_mb_s']:.0f} ({row[f'scan_{p}_vs_save']:.0%})" if f"scan_{p}_mb_s" in row else "-"
                    for p in ("export", "storage", "auto")
                ),
            ]
        )
    header = [
        "scan rate MB/s (cold)",
        "size",
        "docker save",
        "docker export",
        "ours export",
        "ours storage",
        "ours auto",
    ]
    print("\n".join(_rows(header, rows)))
    print(
        "  (size / seconds of the cold layer index in the pytest run, container run alongside; % = of docker save's"
        " rate.\n   The storage path reads the tar-split headers and only the files it probes -- executables,"
        " package databases --\n   so on big data files its 'rate' is no byte rate. Sub-MB images measure latency.)\n"
    )

    mem = r["memory"]
    print(
        f"peak memory (ru_maxrss): ours {_s(mem['ours_peak_mb_examples'])} MB on the example images,"
        f" {_s(mem['ours_peak_mb_big'])} MB on the 1 GB image"
        f" ({', '.join(f'{k}: {v:.0f}' for k, v in mem['ours_big_by_run'].items())});"
        f" anchors: {', '.join(f'{k} {v:.0f}' for k, v in mem['anchors_peak_mb'].items())} MB\n"
    )

    c = r["contention"]
    if c["cpu_pressure_median"] is not None:
        print(
            f"CPU contention while timing (PSI 'some'): median {c['cpu_pressure_median']:.0%} of the wall time,"
            f" max {c['cpu_pressure_max']:.0%}\n"
        )
    rows = []
    for v in r["verdicts"]:
        if "ours/anchors" in v["what"]:
            shown = _x(v["value"])
        elif "scan" in v["what"] and v["value"] is not None:
            shown = f"{v['value']:.0%}"
        else:
            shown = _s(v["value"])
        each = ", ".join(
            f"{i} {p['value']:.2f}x{'' if p['met'] else ' MISSED'}" for i, p in v.get("per_image", {}).items()
        )
        verdict = "not measured" if v["met"] is None else "met" if v["met"] else "MISSED"
        rows.append([v["what"], shown, v["target"], verdict, each])
    header = ["target", "measured", "target", "verdict", "per image, each in its own pytest process"]
    print("\n".join(_rows(header, rows, left=(0, 4))))
    print()
    for side_image, flagged in r["findings"].items():
        print(f"flagged by {side_image}: {', '.join(flagged) or 'nothing'}")
    for problem in r["problems"]:
        print(f"problem: {problem}")
    for note in r["notes"]:
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--anchors", default=str(HERE / ".venv-anchors" / "bin"), help="folder of the anchor tools")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every timing (median reported)")
    parser.add_argument("--skip-big", action="store_true", help="skip the ~1 GB image (peak memory target)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch folder (logs, configs)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return Bench(args).main()


if __name__ == "__main__":
    sys.exit(main())
