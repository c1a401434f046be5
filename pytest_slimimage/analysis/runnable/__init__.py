"""Why an image would not start as shipped, read off its files without running anything.

The engine (runc) looks the program up, the kernel reads its ``#!`` line or ELF header, loads
the ELF loader named by PT_INTERP, and the loader finds every DT_NEEDED library. Each step that
would fail is a :class:`Problem`, found in that order. The ``runnable`` check
(:mod:`pytest_slimimage.checks.runnable`) reports them; a failed ``runs`` check adds them as evidence.

- :mod:`.commands`: what the engine would exec (the command, PATH and WORKDIR lookups, shell form,
  ``#!`` interpreter chains), as data;
- :mod:`.libraries`: the ELF loader's library search, as data;
- :mod:`.problems`: that data in words (:class:`Problem`, :func:`render`);
- :mod:`.diagnosis`: the three together (:func:`examine`, :func:`diagnose`).

Pure: reads :class:`~pytest_slimimage.facts.ImageFacts` (the config and the indexed filesystem);
no I/O, no pytest, no docker.
"""

from __future__ import annotations

from pytest_slimimage.analysis.runnable.commands import DEFAULT_PATH, MAX_INTERPRETERS
from pytest_slimimage.analysis.runnable.diagnosis import Diagnosis, diagnose, examine
from pytest_slimimage.analysis.runnable.problems import Problem, render

__all__ = ["DEFAULT_PATH", "MAX_INTERPRETERS", "Diagnosis", "Problem", "diagnose", "examine", "render"]
