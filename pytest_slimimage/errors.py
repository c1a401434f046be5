"""The plugin's exceptions. Pure: imports neither pytest nor docker."""

from __future__ import annotations


class SlimImageError(Exception):
    """Base of every error pytest-slimimage raises for bad input or a broken environment."""


class ImageBuildError(SlimImageError):
    """A build failed. The message names the Dockerfile, the failing step and the tail of the log."""

    def __init__(self, message: str, *, log: str = "", step: str | None = None) -> None:
        super().__init__(message)
        self.log = log
        self.step = step


class EngineUnavailable(SlimImageError):
    """No Docker engine answers (DOCKER_HOST honoured)."""


class EngineLost(EngineUnavailable):
    """The engine answered earlier in the session and no longer does (killed, stopped, frozen):
    the message names it, the image and what was being done; every later use of it in the
    session raises one too, at once."""


class ImageCheckFailed(AssertionError):
    """A check over an image failed. ``results`` holds every failed :class:`CheckResult`."""

    def __init__(self, message: str, results: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.results = results


class SlimImageWarning(UserWarning):
    """A soft budget exceeded (``warn_size``): reported, never a failure."""
