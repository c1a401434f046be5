"""Facts about a built image, gathered once by the engine adapter and read by the checks.

Pure data: no pytest, no docker. Checks take these and nothing else, so they are tested
without an engine by building facts by hand.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.dockerfile.model import Dockerfile

HEALTH_MARGIN = 5.0
"""Seconds ``healthy`` waits beyond what a HEALTHCHECK's own timing allows (see :attr:`Healthcheck.budget`)."""


@dataclass(frozen=True)
class Healthcheck:
    """The image's ``HEALTHCHECK`` (``docker image inspect .Config.Healthcheck``), durations in seconds
    with the engine's defaults filled in (30 s interval and timeout, no start period, 3 retries)."""

    test: tuple[str, ...]
    """``("CMD", "wget", ...)``, ``("CMD-SHELL", "wget ... || exit 1")`` or ``("NONE",)``."""
    interval: float = 30.0
    timeout: float = 30.0
    start_period: float = 0.0
    retries: int = 3

    @classmethod
    def from_config(cls, raw: object) -> Healthcheck | None:
        """From ``Config.Healthcheck`` (nanoseconds; 0 or absent means the default); None without one."""
        if not isinstance(raw, Mapping) or not raw.get("Test"):
            return None

        def seconds(key: str, default: float) -> float:
            value = raw.get(key)
            return int(value) / 1e9 if isinstance(value, (int, float)) and value > 0 else default

        retries = raw.get("Retries")
        return cls(
            test=tuple(str(x) for x in raw["Test"]),
            interval=seconds("Interval", 30.0),
            timeout=seconds("Timeout", 30.0),
            start_period=seconds("StartPeriod", 0.0),
            retries=int(retries) if isinstance(retries, int) and retries > 0 else 3,
        )

    @property
    def disabled(self) -> bool:
        """``HEALTHCHECK NONE``: the base image's check turned off."""
        return self.test[:1] == ("NONE",)

    @property
    def command(self) -> str:
        """The probe as the Dockerfile says it: ``CMD ["wget", ...]`` or ``CMD wget ... || exit 1``."""
        kind, rest = self.test[0], self.test[1:]
        if kind == "CMD-SHELL":
            return "CMD " + " ".join(rest)
        if kind == "CMD":
            return "CMD " + "[" + ", ".join(f'"{arg}"' for arg in rest) + "]"
        return " ".join(self.test)

    @property
    def budget(self) -> float:
        """Seconds by which the engine has said healthy or unhealthy: the start period, then
        ``retries`` probes, each taking up to its timeout, an interval apart; plus :data:`HEALTH_MARGIN`."""
        return self.start_period + self.retries * (self.interval + self.timeout) + HEALTH_MARGIN


@dataclass(frozen=True)
class ImageConfig:
    """The parts of the image config the checks read (``docker image inspect .Config``)."""

    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    user: str = ""
    workdir: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    architecture: str = ""
    os: str = ""
    variant: str = ""
    healthcheck: Healthcheck | None = None
    """The image's ``HEALTHCHECK`` (None: it has none)."""

    @classmethod
    def from_inspect(cls, attrs: Mapping[str, object]) -> ImageConfig:
        """Build from the engine's image inspect JSON (``Config`` plus ``Architecture``/``Os``)."""
        raw = attrs.get("Config")
        config: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        env: dict[str, str] = {}
        for item in config.get("Env") or []:
            key, _, val = str(item).partition("=")
            env[key] = val
        cmd = config.get("Cmd")
        entrypoint = config.get("Entrypoint")
        return cls(
            cmd=tuple(str(x) for x in cmd) if cmd else None,
            entrypoint=tuple(str(x) for x in entrypoint) if entrypoint else None,
            user=str(config.get("User") or ""),
            workdir=str(config.get("WorkingDir") or ""),
            env=env,
            labels=dict(config.get("Labels") or {}),
            architecture=str(attrs.get("Architecture") or ""),
            os=str(attrs.get("Os") or ""),
            variant=str(attrs.get("Variant") or ""),
            healthcheck=Healthcheck.from_config(config.get("Healthcheck")),
        )

    @property
    def platform(self) -> str:
        """``os/arch[/variant]`` as ``--platform`` takes it (``linux/arm64``); "" when unknown."""
        if not self.architecture:
            return ""
        return "/".join(p for p in (self.os or "linux", self.architecture, self.variant) if p)

    @property
    def argv(self) -> tuple[str, ...]:
        """What the container runs when started as shipped: ENTRYPOINT + CMD."""
        return (self.entrypoint or ()) + (self.cmd or ())


@dataclass(frozen=True)
class Layer:
    """One history entry of the image: the instruction that made it and the bytes it added."""

    created_by: str
    size: int
    empty: bool
    from_base: bool = False
    """True for entries the final stage's base image already had."""

    @property
    def instruction(self) -> str:
        """``created_by`` as a Dockerfile line: the legacy builder's ``/bin/sh -c #(nop) `` prefix
        removed, and BuildKit's ``RUN |1 X=y /bin/sh -c make # buildkit`` read as ``RUN make``."""
        text = " ".join(self.created_by.split())
        if not text:
            return "(imported layer, no instruction recorded)"
        if text.endswith(" # buildkit"):
            text = text[: -len(" # buildkit")].rstrip()
            if not text.startswith("RUN "):
                return text
            command = text[len("RUN ") :]
            if command.startswith("|"):  # build args first: "|2 A=1 B=2 make"
                count, _, rest = command[1:].partition(" ")
                words = rest.split(" ")
                command = " ".join(words[int(count) :]) if count.isdigit() else rest
            return "RUN " + command.removeprefix("/bin/sh -c ")
        if text.startswith("/bin/sh -c #(nop) "):
            return text[len("/bin/sh -c #(nop) ") :].strip()
        if text.startswith("|") and " /bin/sh -c " in text:  # build args first: "|1 X=y /bin/sh -c make"
            text = "/bin/sh -c " + text.split(" /bin/sh -c ", 1)[1]
        if text.startswith("/bin/sh -c "):
            return "RUN " + text[len("/bin/sh -c ") :]
        return text


@dataclass(frozen=True)
class ElfInfo:
    """What the layer index learned of an executable ELF file (read with pyelftools)."""

    machine: str
    """The engine's architecture name for ``e_machine``: ``amd64``, ``arm64``, ``386``, ``arm``, ..."""
    bits: int
    """32 or 64."""
    kind: str
    """``exec``, ``dyn`` (PIE executables and shared objects), ``rel`` or ``core``."""
    interp: str | None = None
    """PT_INTERP, the loader a dynamically linked program needs (None: static)."""
    needed: tuple[str, ...] = ()
    """DT_NEEDED library names."""
    runpath: tuple[str, ...] = ()
    """DT_RUNPATH (or DT_RPATH) directories."""
    markers: tuple[str, ...] = ()
    """Toolchain identities found in the file's bytes (``gcc-driver``, ``clang``, ...), whatever its name."""

    @property
    def static(self) -> bool:
        return self.interp is None and not self.needed


@dataclass(frozen=True)
class FileEntry:
    """One path of the image's final filesystem."""

    path: str
    """Absolute, normalised: ``/usr/bin/gcc``."""
    kind: str
    """``file``, ``dir``, ``symlink``, ``hardlink`` or ``other``."""
    size: int = 0
    mode: int = 0o644
    link: str = ""
    """Symlink target as stored, or the hard link's target path."""
    layer: int = -1
    """Index (bottom to top, among the image's filesystem layers) of the layer that last wrote this path."""
    elf: ElfInfo | None = None
    """For executable ELF files: what the loader needs and what the file is."""
    shebang: str | None = None
    """For executable scripts: the ``#!`` line without ``#!`` (``/bin/sh -e``)."""
    uid: int = 0
    """The owner's numeric user id, as the layer records it."""
    gid: int = 0
    """The owner's numeric group id, as the layer records it."""

    @property
    def executable(self) -> bool:
        return self.kind in ("file", "hardlink") and bool(self.mode & 0o111)


@dataclass(frozen=True)
class SecretFinding:
    """A private key, credential or token found in one layer (``no_secrets``). Never the secret
    itself: its kind, where it is, and a masked preview (``AKIA*************XYZ``)."""

    rule: str
    """The detector that matched (``aws-access-key-id``, ``pem-private-key``, ...)."""
    kind: str
    """What was found, for people: ``AWS access key id``, ``SSH private key``, ..."""
    path: str
    """The file that holds it (absolute), or ``ENV NAME`` / ``history`` for the image config."""
    line: int = 0
    """1-based line of the match in the file; 0 when found by name alone."""
    preview: str = ""
    """The matched text with every secret value masked."""
    layer: int = -1
    """The filesystem layer (bottom to top, from 0) that wrote the file; -1 inside a layer index
    (each index is one layer) and for the image config."""
    ended: str = ""
    """``""`` while the file is in the final filesystem as that layer wrote it; else ``deleted``,
    ``overwritten`` or ``hidden by an opaque directory``: the bytes still ship in the layer."""
    ended_in: int = -1
    """The layer that deleted, overwrote or hid it (-1 while it is present)."""


@dataclass(frozen=True)
class FileSystem:
    """The merged filesystem view of an image (whiteouts applied), plus captured small files."""

    entries: Mapping[str, FileEntry] = field(default_factory=dict)
    contents: Mapping[str, bytes] = field(default_factory=dict)
    """Contents of the few files the index was asked to keep (package databases)."""

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, path: object) -> bool:
        return path in self.entries

    def get(self, path: str) -> FileEntry | None:
        return self.entries.get(normalise(path))

    def resolve(self, path: str, *, max_links: int = 40) -> FileEntry | None:
        """Follow symlinks (absolute and relative, in every component) to the entry they reach."""
        parts = [p for p in normalise(path).split("/") if p]
        resolved = "/"
        hops = 0
        while parts:
            part = parts.pop(0)
            candidate = posixpath.join(resolved, part)
            entry = self.entries.get(candidate)
            if entry is not None and entry.kind == "symlink":
                hops += 1
                if hops > max_links:
                    return None
                target = entry.link
                base = "/" if target.startswith("/") else resolved
                parts = [p for p in normalise(posixpath.join(base, target)).split("/") if p] + parts
                resolved = "/"
                continue
            resolved = candidate
        return self.entries.get(resolved) if resolved != "/" else FileEntry("/", "dir")


def normalise(path: str) -> str:
    """``./usr/bin/gcc``, ``usr/bin/gcc/`` and ``/usr//bin/gcc`` -> ``/usr/bin/gcc``."""
    while path.startswith("./"):
        path = path[2:]
    out = posixpath.normpath("/" + path.lstrip("/")) if path not in ("", ".") else "/"
    return "/" if out == "//" else out


DEFAULT_RUN_TIMEOUT = 30.0
"""Seconds a container run may take before it is killed, unless the session or the check says otherwise."""


@dataclass(frozen=True)
class RunLimits:
    """The sandbox a container runs in unless told otherwise."""

    network: bool = False
    memory: str = "256m"
    pids: int = 256
    output_cap: int = 1024 * 1024
    """Bytes of stdout and of stderr kept; the rest is dropped and the result says so."""

    @property
    def log_limit(self) -> str:
        """The most the engine's own log of a run may hold on its disk (json-file ``max-size``):
        twice the output kept, as the log is only read when the attach stream breaks."""
        return str(2 * self.output_cap)


@dataclass(frozen=True)
class RunResult:
    """What a container run as shipped produced."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    argv: tuple[str, ...] = ()
    """ENTRYPOINT + CMD (or the args that replaced CMD) as the engine ran them."""
    start_error: str = ""
    """The engine's message when the container could not even start (e.g. ``exec ./hello: no such file``)."""
    truncated: bool = False
    duration: float = 0.0
    oom_killed: bool = False
    """The engine killed it for going over the sandbox's memory limit (``State.OOMKilled``)."""
    memory: str = ""
    """The sandbox's memory limit it ran under (``256m``)."""
    emulation: str = ""
    """How a foreign platform ran (``linux/arm64 under QEMU emulation (...)``); "" when native."""


DEFAULT_SERVICE_WITHIN = 30.0
"""Seconds a service (``serves``) may take to become ready unless the check says otherwise."""


@dataclass(frozen=True)
class ServicePlan:
    """What a service check waits for, the image run as shipped (``serves``, ``healthy``): ``port``
    accepting connections, ``http`` (a path) answering ``status`` with ``body``, ``log`` in its
    output, or (``healthy``) its own HEALTHCHECK saying healthy; all within ``within`` seconds."""

    port: int | None = None
    http: str | None = None
    status: int = 200
    body: str | re.Pattern[str] | None = None
    """A str equals the body (trailing newlines aside); a compiled regex is searched."""
    log: str | re.Pattern[str] | None = None
    """A str is looked for in the output (stdout and stderr); a compiled regex is searched."""
    within: float | None = DEFAULT_SERVICE_WITHIN
    """None (``healthy`` only): the HEALTHCHECK's own timing (:attr:`Healthcheck.budget`)."""
    healthy: bool = False

    def body_matches(self, body: str) -> bool:
        if self.body is None:
            return True
        if isinstance(self.body, re.Pattern):
            return self.body.search(body) is not None
        return body.rstrip("\r\n") == self.body.rstrip("\r\n")

    def log_matches(self, output: str) -> bool:
        if self.log is None:
            return True
        if isinstance(self.log, re.Pattern):
            return self.log.search(output) is not None
        return self.log in output

    def deadline(self, healthcheck: Healthcheck | None) -> float:
        """Seconds to wait at most: ``within``, else the HEALTHCHECK's own timing."""
        if self.within is not None:
            return self.within
        return healthcheck.budget if healthcheck is not None else DEFAULT_SERVICE_WITHIN


@dataclass(frozen=True)
class HealthProbe:
    """One run of the image's HEALTHCHECK, as the engine logged it (``State.Health.Log``)."""

    exit_code: int
    output: str = ""


@dataclass(frozen=True)
class ServiceResult:
    """What a service run (``serves``, ``healthy``) saw: ready or not, and if not, which condition
    was not met and what was seen instead."""

    ready: bool
    unmet: str = ""
    """The condition not met: ``start`` (the container did not start), ``port``, ``http``, ``log``
    or ``healthy``; "" when ready."""
    seen: str = ""
    """What was seen instead, last: ``connection refused``, ``status 503``, ``no answer within 2s``,
    ``health: unhealthy``, ``exited with code 3``, the engine's start error."""
    exited: bool = False
    """The container exited (or was killed) before it was ready."""
    exit_code: int | None = None
    oom_killed: bool = False
    timed_out: bool = False
    """Not ready when its time (:attr:`waited`) was up."""
    start_error: str = ""
    status: int | None = None
    """The last HTTP status answered (``http``)."""
    body: str = ""
    """The head of the last HTTP body answered."""
    logs: str = ""
    """The container's last output lines (stdout and stderr as they came), bounded."""
    health: str = ""
    """The last health status the engine reported (``starting``, ``healthy``, ``unhealthy``)."""
    health_log: tuple[HealthProbe, ...] = ()
    """The engine's last HEALTHCHECK probes, oldest first (it keeps five)."""
    argv: tuple[str, ...] = ()
    """ENTRYPOINT + CMD as the engine ran them."""
    container: str = ""
    """The container's name (``slimimage-<session>-<image>-<random>``); it is removed by now."""
    duration: float = 0.0
    """Seconds from the container's start to ready (or to the failure)."""
    waited: float = 0.0
    """Seconds it was given (``within``, or the HEALTHCHECK's own timing)."""
    port: int | None = None
    host_port: int | None = None
    """The random port on 127.0.0.1 that ``port`` was published on."""
    host: str = ""
    """Where the published port was reached (``127.0.0.1``)."""
    emulation: str = ""
    """How a foreign platform ran (``linux/arm64 under QEMU emulation (...)``); "" when native."""


@dataclass(frozen=True)
class PulledLayer:
    """One filesystem layer as a registry stores it and a host pulls it (``max_pull_size``)."""

    digest: str
    """``sha256:<hex>`` of the uncompressed layer tar (the diff id)."""
    tar_size: int
    """Bytes of the uncompressed layer tar."""
    compressed: int
    """Bytes of the layer as pushed: the layer tar gzip-compressed, or the blob an archive's manifest lists."""
    source: str = "gzip"
    """``gzip``: computed here (see :mod:`pytest_slimimage.analysis.layerscan`); ``manifest``: read
    from an OCI archive's manifest, where the layer is stored compressed already."""


@dataclass(frozen=True)
class FileState:
    """What one path of an image's final filesystem holds, as ``reproducible`` compares two builds."""

    kind: str
    """``file``, ``dir``, ``symlink``, ``hardlink`` or ``other`` (as :class:`FileEntry`)."""
    mode: int
    uid: int
    gid: int
    size: int = 0
    digest: str = ""
    """``sha256:<hex>`` of a regular file's content; ``""`` for anything else."""
    link: str = ""
    """A symlink's target as stored, a hard link's target path."""
    mtime: int = 0
    """Modification time, seconds since the epoch (compared under ``reproducible="strict"`` only)."""
    layer: int = -1
    """The filesystem layer (bottom to top, from 0) that last wrote the path."""


@dataclass(frozen=True)
class Rebuild:
    """The same Dockerfile and context built again without the build cache (``reproducible``)."""

    id: str
    files: Mapping[str, FileState]
    """Every path of the rebuilt image's final filesystem."""
    layers: tuple[Layer, ...] = ()
    """The rebuilt image's history, bottom to top."""


@dataclass(frozen=True)
class ImageFacts:
    """Everything the checks know about one image."""

    name: str
    """How reports name the image: the fixture or declarative name, else a tag."""
    id: str
    size: int
    config: ImageConfig
    layers: tuple[Layer, ...] = ()
    dockerfile: Dockerfile | None = None
    tags: tuple[str, ...] = ()
    filesystem: FileSystem | None = None
    base_size: int | None = None
    """Bytes that come from the final stage's base image, when it is known locally."""
    waste: Any = None
    """A ``pytest_slimimage.analysis.waste.WasteReport`` when the layers were indexed."""
    engine_arch: str | None = None
    """The architecture of the engine the image runs on (``amd64``), when known."""
    engine_emulates: Mapping[str, str] | None = None
    """The foreign architectures the engine runs through user-mode emulation, each with how
    (``{"arm64": "QEMU (binfmt_misc qemu-aarch64, /usr/bin/qemu-aarch64-static)"}``); None when
    it cannot be told (an engine on another machine)."""
    run: RunResult | None = None
    """The container run a ``run`` check reads (set for that check only)."""
    service: ServiceResult | None = None
    """The service run a ``service`` check reads (``serves``, ``healthy``; set for that check only)."""
    baseline: BaselineEntry | None = None
    """The image's entry in the session's size baseline (for ``max_growth``)."""
    baseline_updating: bool = False
    """This session rewrites the baseline (``--slimimage-update-baseline``): growth checks pass."""
    pull: tuple[PulledLayer, ...] | None = None
    """Each filesystem layer's compressed size, bottom to top (for ``max_pull_size``)."""
    file_states: Mapping[str, FileState] | None = None
    """Every path of the final filesystem with its owner and content digest (for ``reproducible``)."""
    rebuild: Rebuild | None = None
    """The image built again without cache (for ``reproducible``)."""
    secrets: tuple[SecretFinding, ...] | None = None
    """Secrets found in every layer (files later deleted or overwritten included), and in the image
    config's environment and history, masked (for ``no_secrets``); None when the layers were not read."""

    @property
    def largest_layers(self) -> tuple[Layer, ...]:
        return tuple(sorted((la for la in self.layers if la.size > 0), key=lambda la: -la.size))
