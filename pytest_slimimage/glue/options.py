"""The plugin's settings table: one row per setting, and everything derived from it.

The command-line options and ini keys (:func:`pytest_addoption`), the resolved settings
(:meth:`Settings.from_config <pytest_slimimage.glue.settings.Settings.from_config>`, field defaults
included) and the README's Settings table (:func:`settings_table`) are all read from :data:`OPTIONS`,
so each name, default and help text is written once, here.

Help texts may mark code with backticks: the README keeps them, ``pytest --help`` drops them.
"""

from __future__ import annotations

import argparse
import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_slimimage.buildinputs import BUILDER_KINDS
from pytest_slimimage.facts import DEFAULT_RUN_TIMEOUT
from pytest_slimimage.labels import KEEP_BUILDS, TAG_REPOSITORY

GROUP_NAME = "slimimage"
GROUP_TITLE = "container image checks (pytest-slimimage)"


class Kind(enum.Enum):
    """What a setting's value is, which decides how it is declared, parsed and shown."""

    FLAG = "flag"
    """On or off: ``store_true`` on the command line; true/false (yes/no, on/off, 1/0) in the ini file."""
    SECONDS = "seconds"
    """A timeout: a positive, finite number of seconds. Its help shows its default."""
    PATH = "path"
    """A file; a relative path is taken from the rootdir."""
    CHOICE = "choice"
    """One of the row's :attr:`Option.choices`. Its help shows its default."""
    NAME = "name"
    """A name, taken as it is (surrounding spaces dropped)."""


def parse_flag(value: object) -> bool:
    """An ini flag: ``true``/``false`` and their usual spellings; ValueError otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def parse_seconds(value: object) -> float:
    """A timeout: a positive, finite number of seconds; ValueError otherwise."""
    try:
        seconds = float(str(value))
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds):  # float() accepts "nan" and "inf"; neither is a timeout
        raise ValueError(f"expected a number of seconds, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def parse_path(value: object) -> Path:
    """A file, ``~`` expanded; the caller anchors a relative one (see ``Settings.from_config``)."""
    return Path(str(value)).expanduser()


def parse_name(value: object) -> str:
    """A name (a buildx builder's): not empty; ValueError otherwise."""
    text = str(value).strip()
    if not text or any(ch.isspace() for ch in text):
        raise ValueError(f"expected a name, got {value!r}")
    return text


def parse_choice(value: object, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case and surrounding spaces ignored); ValueError naming them otherwise."""
    text = str(value).strip().lower()
    if text not in choices:
        raise ValueError(f"expected {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}")
    return text


_PARSERS: Mapping[Kind, Callable[[object], object]] = {
    Kind.FLAG: parse_flag,
    Kind.SECONDS: parse_seconds,
    Kind.PATH: parse_path,
    Kind.NAME: parse_name,
}


@dataclass(frozen=True)
class Option:
    """One setting: its ``Settings`` field, command-line flag, ini key, kind, default and help."""

    name: str
    """The :class:`~pytest_slimimage.glue.settings.Settings` field it sets."""
    flag: str
    ini: str | None
    """None: command line only."""
    kind: Kind
    default: bool | float | str | None
    """The value when neither the command line nor the ini file sets it."""
    help: str
    """What it does, without its default (that is added from :attr:`default`)."""
    metavar: str | None = None
    """The value's placeholder (``SECONDS``, ``PATH``); None for a flag."""
    choices: tuple[str, ...] = ()
    """The values a :attr:`Kind.CHOICE` setting takes."""

    @property
    def dest(self) -> str:
        """Where the command-line value lands: ``config.getoption(dest)``."""
        return self.flag.lstrip("-").replace("-", "_")

    def parse(self, value: object) -> Any:
        """A value from the command line or the ini file, as the setting's type; ValueError if bad."""
        if self.kind is Kind.CHOICE:
            return parse_choice(value, self.choices)
        return _PARSERS[self.kind](value)

    def shown_default(self) -> str:
        """The default as the help text and the README say it."""
        if self.kind is Kind.FLAG:
            return "true" if self.default else "false"
        if self.default is None:
            return "no limit" if self.kind is Kind.SECONDS else "none"
        if isinstance(self.default, str):
            return self.default
        return f"{self.default:g}"

    def help_text(self) -> str:
        """The help of ``pytest --help``, for the option and its ini key alike."""
        text = self.help.replace("`", "")
        if self.kind in (Kind.SECONDS, Kind.CHOICE):
            text += f" (default: {self.shown_default()})"
        return text + "."


OPTIONS: tuple[Option, ...] = (
    Option(
        "require_engine",
        "--slimimage-require-engine",
        "slimimage_require_engine",
        Kind.FLAG,
        False,
        "treat a missing Docker engine as an error instead of skipping image tests (use in CI)",
    ),
    Option(
        "keep_images",
        "--slimimage-keep-images",
        "slimimage_keep_images",
        Kind.FLAG,
        False,
        f"never prune the build cache: keep every image built for a fixture (tagged `{TAG_REPOSITORY}/<name>:<key>`),"
        f" not only its {KEEP_BUILDS} most recently used",
    ),
    Option(
        "run_timeout",
        "--slimimage-run-timeout",
        "slimimage_run_timeout",
        Kind.SECONDS,
        DEFAULT_RUN_TIMEOUT,
        "default time a container run may take before it is killed",
        "SECONDS",
    ),
    Option(
        "build_timeout",
        "--slimimage-build-timeout",
        "slimimage_build_timeout",
        Kind.SECONDS,
        None,
        "time an image build may take",
        "SECONDS",
    ),
    Option(
        "builder",
        "--slimimage-builder",
        "slimimage_builder",
        Kind.CHOICE,
        "auto",
        "which builder builds images: `auto` (BuildKit where a docker client here runs it, else the legacy"
        " builder), `buildkit` or `legacy`; `builder=` on a fixture or table overrides it",
        "BUILDER",
        BUILDER_KINDS,
    ),
    Option(
        "buildx_builder",
        "--slimimage-buildx-builder",
        "slimimage_buildx_builder",
        Kind.NAME,
        None,
        "the buildx builder BuildKit builds go to (`docker buildx build --builder NAME`; needs buildx)",
        "NAME",
    ),
    Option(
        "baseline",
        "--slimimage-baseline",
        "slimimage_baseline",
        Kind.PATH,
        None,
        "size baseline file (JSON) that `max_growth` compares against",
        "PATH",
    ),
    Option(
        "update_baseline",
        "--slimimage-update-baseline",
        None,
        Kind.FLAG,
        False,
        "rewrite the size baseline with this run's images (`max_growth` checks then pass)",
    ),
    Option(
        "report",
        "--slimimage-report",
        "slimimage_report",
        Kind.PATH,
        None,
        "write a JSON report of every image (schema: `docs/report.schema.json`)",
        "PATH",
    ),
    Option(
        "markdown",
        "--slimimage-markdown",
        "slimimage_markdown",
        Kind.PATH,
        None,
        "write a Markdown size table (appended to when it is `$GITHUB_STEP_SUMMARY`)",
        "PATH",
    ),
    Option(
        "chart",
        "--slimimage-chart",
        "slimimage_chart",
        Kind.PATH,
        None,
        "write an SVG chart of image sizes, budgets and baselines",
        "PATH",
    ),
)
"""Every setting of the plugin, in the order ``pytest --help`` and the README list them."""

OPTION: Mapping[str, Option] = {row.name: row for row in OPTIONS}


def default_of(name: str) -> Any:
    """The table's default for the ``Settings`` field ``name`` (used for the field's own default)."""
    return OPTION[name].default


def _command_line_type(row: Option) -> Callable[[str], object]:
    """argparse's ``type=``: the row's parser, its ValueError turned into argparse's own error."""

    def convert(text: str) -> object:
        try:
            return row.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP_NAME, GROUP_TITLE)
    for row in OPTIONS:
        if row.kind is Kind.FLAG:
            group.addoption(row.flag, action="store_true", default=None, dest=row.dest, help=row.help_text())
        elif row.kind is not Kind.PATH:  # parsed here: a bad value is argparse's error, naming the option
            group.addoption(
                row.flag,
                type=_command_line_type(row),
                default=None,
                dest=row.dest,
                metavar=row.metavar,
                help=row.help_text(),
            )
        else:  # a path stays text until Settings.from_config anchors it at the rootdir
            group.addoption(row.flag, default=None, dest=row.dest, metavar=row.metavar, help=row.help_text())
        if row.ini is not None:
            parser.addini(row.ini, row.help_text(), default="")  # "": not set, so the row's default applies


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_table() -> str:
    """The README's Settings table (Markdown), rendered from :data:`OPTIONS`."""
    lines = ["| option | ini key | default | meaning |", "|---|---|---|---|"]
    for row in OPTIONS:
        option = f"{row.flag} {row.metavar}" if row.metavar else row.flag
        ini = f"`{row.ini}`" if row.ini else ""
        lines.append(f"| `{option}` | {ini} | {row.shown_default()} | {_cell(row.help)} |")
    return "\n".join(lines) + "\n"
