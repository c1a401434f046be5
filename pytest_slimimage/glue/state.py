"""Where the pytest glue keeps the session's state: one :class:`SlimImageSession` per pytest process,
under a ``StashKey`` on the config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_slimimage.glue.session import SlimImageSession

if TYPE_CHECKING:  # docker-py and the engine side load when a test first needs an image
    pass


SESSION_KEY = pytest.StashKey[SlimImageSession]()


def session_of(config: pytest.Config) -> SlimImageSession:
    return config.stash[SESSION_KEY]
