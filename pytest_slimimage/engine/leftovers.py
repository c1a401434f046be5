"""What a session could not remove because its engine went away: its *will*, left in its temporary
folder for the reaper of a later session on that engine (:mod:`.reaper`).

Containers the plugin creates carry its labels, and the reaper finds them by label. The legacy
builder's step containers do not (a build's labels would change the image): when the engine dies
during a legacy build, its step's container stays, unlabelled, and comes back with the engine. The
session then writes down the build (:class:`LostBuild`: the engine, when the build ran, the
Dockerfile's ``RUN`` commands) in ``will.json``, and keeps its folder for the reaper, which
removes the containers of that engine that match: not running, unlabelled by the plugin, created
while the build ran, running one of those commands.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pytest_slimimage.dockerfile.model import Dockerfile
from pytest_slimimage.fileio import write_atomic
from pytest_slimimage.labels import LABEL_SESSION

__all__ = ["SLACK", "LostBuild", "has_will", "read_will", "write_will"]

_WILL = "will-{}.json"
"""One will per process (xdist workers share the folder): ``will-<worker>.json``."""
SLACK = 120.0
"""Seconds either side of a lost build's time during which its step containers were made (the
engine's clock may differ a little from this host's)."""


def _words(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class LostBuild:
    """A legacy build that was running when its engine went away."""

    engine: str
    """The engine's address (``DOCKER_HOST``)."""
    started: float
    lost: float
    commands: tuple[str, ...]
    """The Dockerfile's ``RUN`` commands (shell form as written; exec form as JSON)."""

    @classmethod
    def of(cls, engine: str, dockerfile: Dockerfile, started: float) -> LostBuild:
        commands = [  # every stage's: the legacy builder builds them all
            instruction.arguments
            for stage in dockerfile.stages
            for instruction in stage.instructions
            if instruction.keyword == "RUN"
        ]
        return cls(engine, started, time.time(), tuple(dict.fromkeys(_words(c) for c in commands)))

    def runs(self, cmd: Sequence[str]) -> bool:
        """Whether a container's command (``Config.Cmd``) is one of this build's ``RUN`` steps: the
        shell form's last word (``/bin/sh -c <command>``), or the exec form's whole list."""
        if not cmd:
            return False
        for command in self.commands:
            if _words(str(cmd[-1])) == command:
                return True
            with contextlib.suppress(ValueError, TypeError):
                if [str(word) for word in json.loads(command)] == [str(word) for word in cmd]:
                    return True
        return False

    def made(self, attrs: Mapping[str, Any], created: float | None) -> bool:
        """Whether a container (its inspect data; ``created``: Unix time) is one of this build's
        step containers: not running, without the plugin's labels, made while it ran, running one
        of its steps."""
        state = attrs.get("State") or {}
        config = attrs.get("Config") or {}
        if state.get("Running") or LABEL_SESSION in (config.get("Labels") or {}):
            return False
        if created is None or not self.started - SLACK <= created <= self.lost + SLACK:
            return False
        return self.runs(list(config.get("Cmd") or ()))


def write_will(folder: Path, worker: str, builds: Iterable[LostBuild]) -> None:
    """Write the lost builds of the process ``worker`` into the session folder (beside its owner file)."""
    data = {"builds": [asdict(build) for build in builds]}
    write_atomic(folder / _WILL.format(worker), json.dumps(data))


def has_will(folder: Path) -> bool:
    return any(folder.glob(_WILL.format("*")))


def read_will(folder: Path) -> list[LostBuild]:
    """The lost builds the wills in a session folder name (a bad will names none)."""
    found: list[LostBuild] = []
    for will in sorted(folder.glob(_WILL.format("*"))):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
            data = json.loads(will.read_text(encoding="utf-8"))
            found.extend(
                LostBuild(str(b["engine"]), float(b["started"]), float(b["lost"]), tuple(str(c) for c in b["commands"]))
                for b in data.get("builds") or ()
            )
    return found
