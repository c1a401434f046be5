"""The plugin's command-line options and ini keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_slimimage.glue.settings import positive_seconds

if TYPE_CHECKING:  # docker-py and the engine side load when a test first needs an image
    pass


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("slimimage", "container image checks (pytest-slimimage)")
    group.addoption(
        "--slimimage-require-engine",
        action="store_true",
        default=None,
        dest="slimimage_require_engine",
        help="treat a missing Docker engine as an error instead of skipping image tests (use in CI).",
    )
    group.addoption(
        "--slimimage-keep-images",
        action="store_true",
        default=None,
        dest="slimimage_keep_images",
        help="keep the images the session built (tagged pytest-slimimage/<name>:<session>-<key>).",
    )
    group.addoption(
        "--slimimage-run-timeout",
        type=positive_seconds,
        default=None,
        dest="slimimage_run_timeout",
        metavar="SECONDS",
        help="default time a container run may take before it is killed (default: 30).",
    )
    group.addoption(
        "--slimimage-build-timeout",
        type=positive_seconds,
        default=None,
        dest="slimimage_build_timeout",
        metavar="SECONDS",
        help="time an image build may take (default: no limit).",
    )
    group.addoption(
        "--slimimage-baseline",
        default=None,
        dest="slimimage_baseline",
        metavar="PATH",
        help="size baseline file (JSON) that max_growth compares against.",
    )
    group.addoption(
        "--slimimage-update-baseline",
        action="store_true",
        default=False,
        dest="slimimage_update_baseline",
        help="rewrite the size baseline with this run's images (max_growth checks then pass).",
    )
    group.addoption(
        "--slimimage-report",
        default=None,
        dest="slimimage_report",
        metavar="PATH",
        help="write a JSON report of every image (schema: docs/report.schema.json).",
    )
    group.addoption(
        "--slimimage-markdown",
        default=None,
        dest="slimimage_markdown",
        metavar="PATH",
        help="write a Markdown size table (e.g. $GITHUB_STEP_SUMMARY).",
    )
    group.addoption(
        "--slimimage-chart",
        default=None,
        dest="slimimage_chart",
        metavar="PATH",
        help="write an SVG chart of image sizes, budgets and baselines.",
    )
    parser.addini("slimimage_baseline", "size baseline file (JSON)", default="")
    parser.addini("slimimage_report", "JSON report path", default="")
    parser.addini("slimimage_markdown", "Markdown report path", default="")
    parser.addini("slimimage_chart", "SVG chart path", default="")
    parser.addini("slimimage_require_engine", "a missing Docker engine is an error, not a skip", default="false")
    parser.addini("slimimage_keep_images", "keep the images the session built", default="false")
    parser.addini("slimimage_run_timeout", "default container run timeout in seconds", default="")
    parser.addini("slimimage_build_timeout", "image build timeout in seconds", default="")
