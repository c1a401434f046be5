"""The session's builders: which one a build asking for ``auto``, ``buildkit`` or ``legacy`` gets
(decided once per session, from probes of this machine's docker clients), and a
:class:`~pytest_slimimage.engine.builder.Builder` that hands each job to the one it names.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace

from pytest_slimimage.buildinputs import BUILDER_KINDS
from pytest_slimimage.engine.builder import Builder, BuildJob, BuildOutcome, LegacyBuilder
from pytest_slimimage.engine.builderchoice import BuilderChoice, BuilderUnavailable, ClientProbe, choose
from pytest_slimimage.engine.buildkit import BuildKitBuilder, candidate_clients, probe_client
from pytest_slimimage.engine.client import Engine
from pytest_slimimage.errors import ImageBuildError

__all__ = ["BuilderSet"]


class BuilderSet:
    """Every builder a session may use, chosen lazily and once.

    ``default`` is the session's builder kind (``--slimimage-builder``); ``buildx_builder`` the
    buildx builder BuildKit builds go to (``--slimimage-buildx-builder``). Each docker client is
    asked what it can do at most once per session, and only when a build needs the answer.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        default: str = "auto",
        buildx_builder: str | None = None,
        env: Mapping[str, str] | None = None,
        clients: Callable[[], list[str]] | None = None,
        probe: Callable[[str], ClientProbe] | None = None,
    ) -> None:
        self.engine = engine
        self.default = default
        self.buildx_builder = buildx_builder
        self.env = dict(os.environ if env is None else env)
        self._clients = clients or (lambda: candidate_clients(self.env))
        self._probe = probe or (lambda path: probe_client(path, self.env))
        self._lock = threading.RLock()
        self._paths: list[str] | None = None
        self._probes: dict[str, ClientProbe] = {}
        self._choices: dict[str, BuilderChoice | BuilderUnavailable] = {}
        self._builders: dict[str, Builder] = {"legacy": LegacyBuilder(engine)}

    def __repr__(self) -> str:
        return f"<BuilderSet default={self.default} {sorted(self._builders)}>"

    @property
    def name(self) -> str:
        """The name of the builder the session's default kind resolves to (the kind itself when
        it cannot be had: a build asking for it raises, one asking for another is unaffected)."""
        try:
            return self.resolve(None).name
        except BuilderUnavailable:
            return self.default

    @property
    def probes(self) -> list[ClientProbe]:
        """The clients asked so far, in order."""
        return list(self._probes.values())

    def _probed(self) -> Iterator[ClientProbe]:
        """The candidate clients' probes in order, each client asked once per session."""
        with self._lock:
            if self._paths is None:
                self._paths = self._clients()
            paths = list(self._paths)
        for path in paths:
            with self._lock:
                if path not in self._probes:
                    self._probes[path] = self._probe(path)
                found = self._probes[path]
            yield found

    def resolve(self, requested: str | None) -> BuilderChoice:
        """The builder a build asking for ``requested`` gets (None: the session's default);
        :class:`BuilderUnavailable` (remembered) when ``buildkit`` cannot be had."""
        kind = requested or self.default
        with self._lock:
            choice = self._choices.get(kind)
            if choice is None:
                try:
                    choice = choose(kind, self._probed(), buildx_builder=self.buildx_builder)
                except BuilderUnavailable as exc:
                    choice = exc
                self._choices[kind] = choice
                if isinstance(choice, BuilderChoice) and choice.name not in self._builders:
                    self._builders[choice.name] = BuildKitBuilder(choice, self.env)
        if isinstance(choice, BuilderUnavailable):
            raise choice
        return choice

    def build(self, job: BuildJob) -> BuildOutcome:
        """Build ``job`` with the builder it names (``job.builder``; None: the default), its
        log starting with ``job.note`` when there is one."""
        name = job.builder or self.resolve(None).name
        builder = self._builders.get(name)
        if builder is None and name.split(":")[0] in BUILDER_KINDS:
            self.resolve(name.split(":")[0])  # a kind not asked for yet (BuilderUnavailable if it cannot be had)
            builder = self._builders.get(name)
        if builder is None:
            raise ImageBuildError(
                f"building {job.display} failed: no builder {name!r} in this session (known: {sorted(self._builders)})"
            )
        try:
            outcome = builder.build(job)
        except ImageBuildError as exc:
            if job.note:
                exc.log = f"{job.note}\n{exc.log}"
            raise
        return replace(outcome, log=f"{job.note}\n{outcome.log}") if job.note else outcome
