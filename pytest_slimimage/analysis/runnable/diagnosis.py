"""The runnable diagnosis of one image as one result: the command followed through the image
(:mod:`.commands`, with the loader's search, :mod:`.libraries`), then worded (:mod:`.problems`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_slimimage.analysis.runnable.commands import walk
from pytest_slimimage.analysis.runnable.problems import Problem, explain
from pytest_slimimage.facts import ImageFacts


@dataclass(frozen=True)
class Diagnosis:
    """Why an image would not start (``problems``), or what it would run (``summary``)."""

    argv: tuple[str, ...]
    """ENTRYPOINT + CMD (or the args that replace CMD)."""
    program: str | None
    """The file the engine would run (None: not found, or shell form without a shell)."""
    static: bool | None
    """Whether the ELF program the command ends in is statically linked (None: no ELF program)."""
    loader: str | None
    """That program's ELF loader (PT_INTERP)."""
    summary: tuple[str, ...]
    """What the command runs, one line a program (``/hello is a static amd64 ELF executable``)."""
    problems: tuple[Problem, ...]
    """First problem first."""


def examine(facts: ImageFacts, *, engine_arch: str | None = None, args: Sequence[str] | None = None) -> Diagnosis:
    """Follow ``facts``' command (ENTRYPOINT + CMD; ``args``, when given and not empty, replace CMD,
    as ``docker run IMAGE ARGS...`` does) to its files, and say what would fail.

    ``engine_arch`` is the engine's architecture (``amd64``, ``arm64``, ...); without it the
    image config's architecture is what the program must match. Without an indexed filesystem
    only a missing command can be found."""
    walked = walk(facts, engine_arch=engine_arch, args=args)
    problems, summary = explain(walked)
    return Diagnosis(walked.command.argv, walked.program, walked.static, walked.loader, summary, problems)


def diagnose(
    facts: ImageFacts, *, engine_arch: str | None = None, args: Sequence[str] | None = None
) -> tuple[Problem, ...]:
    """Why ``facts``' image would not start, first problem first (:func:`examine`'s problems)."""
    return examine(facts, engine_arch=engine_arch, args=args).problems
