"""One test per image; the checks are the ``slimimage`` marker's, added by conftest.py."""

from __future__ import annotations

from pytest_slimimage import BuiltImage


def test_image(bench_image: BuiltImage) -> None:
    """The marker does the work (after the body, in the plugin's ``pytest_runtest_call``)."""
