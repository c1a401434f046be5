"""The option table owns every setting: the README's Settings table, the ``Settings`` defaults and the
value parsing are read from it (``pytest --help`` is checked in tests/plugin/test_options.py)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from pytest_slimimage.checks.declarative import load_declarations
from pytest_slimimage.facts import DEFAULT_RUN_TIMEOUT
from pytest_slimimage.glue.options import OPTION, OPTIONS, Kind, Option, settings_table
from pytest_slimimage.glue.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
REGENERATE = "python -c \"from pytest_slimimage.glue.options import settings_table; print(settings_table(), end='')\""


def readme_settings_table() -> list[str]:
    """The first table under the README's ``### Settings`` heading, line by line."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("### Settings")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    section = lines[start + 1 : end]
    first = next(i for i, line in enumerate(section) if line.startswith("|"))
    rest = section[first:]
    return rest[: next((i for i, line in enumerate(rest) if not line.startswith("|")), len(rest))]


def test_readme_settings_table_is_the_rendered_table() -> None:
    assert readme_settings_table() == settings_table().splitlines(), f"README.md is stale; paste: {REGENERATE}"


def test_every_row_is_in_the_rendered_table() -> None:
    rendered = settings_table()
    for row in OPTIONS:
        assert f"| `{row.flag}" in rendered
        assert row.help in rendered


def test_names_follow_the_conventions() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    for row in OPTIONS:
        assert row.name in fields
        assert row.flag == "--slimimage-" + row.name.replace("_", "-")
        assert row.dest == "slimimage_" + row.name
        assert row.ini in (None, row.dest)
        assert (row.metavar is None) == (row.kind is Kind.FLAG), row.flag
        assert not row.help.endswith("."), "the renderers add the period and the default"
    assert len(OPTION) == len(OPTIONS), "two rows set the same field"


def test_only_update_baseline_is_command_line_only() -> None:
    assert [row.flag for row in OPTIONS if row.ini is None] == ["--slimimage-update-baseline"]


def test_settings_defaults_are_the_tables() -> None:
    defaults = Settings()
    for row in OPTIONS:
        assert getattr(defaults, row.name) == row.default, row.name


def test_the_run_timeout_default_is_the_shared_constant() -> None:
    assert OPTION["run_timeout"].default == DEFAULT_RUN_TIMEOUT
    assert Settings().run_timeout == DEFAULT_RUN_TIMEOUT
    assert inspect.signature(load_declarations).parameters["default_run_timeout"].default == DEFAULT_RUN_TIMEOUT
    assert OPTION["run_timeout"].help_text().endswith(f"(default: {DEFAULT_RUN_TIMEOUT:g}).")


@pytest.mark.parametrize(
    ("name", "shown", "help_end"),
    [
        ("require_engine", "false", "(use in CI)."),
        ("build_timeout", "no limit", "(default: no limit)."),
        ("report", "none", "(schema: docs/report.schema.json)."),
    ],
)
def test_shown_defaults_and_help(name: str, shown: str, help_end: str) -> None:
    row = OPTION[name]
    assert row.shown_default() == shown
    assert row.help_text().endswith(help_end)
    assert "`" not in row.help_text()


@pytest.mark.parametrize(
    ("kind", "value", "parsed"),
    [
        (Kind.FLAG, "Yes", True),
        (Kind.FLAG, " off ", False),
        (Kind.FLAG, "1", True),
        (Kind.FLAG, True, True),
        (Kind.SECONDS, "2.5", 2.5),
        (Kind.SECONDS, 7.0, 7.0),
        (Kind.PATH, "out/report.json", Path("out/report.json")),
    ],
)
def test_values_parse_by_kind(kind: Kind, value: object, parsed: object) -> None:
    row = Option("x", "--slimimage-x", "slimimage_x", kind, None, "x", None if kind is Kind.FLAG else "X")
    assert row.parse(value) == parsed


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        (Kind.FLAG, "maybe", "expected true or false, got 'maybe'"),
        (Kind.SECONDS, "soon", "expected a number of seconds, got 'soon'"),
        (Kind.SECONDS, "nan", "expected a number of seconds, got 'nan'"),
        (Kind.SECONDS, "-inf", "expected a number of seconds, got '-inf'"),
        (Kind.SECONDS, "0", "expected a positive number of seconds, got '0'"),
    ],
)
def test_bad_values_name_the_value(kind: Kind, value: str, message: str) -> None:
    row = Option("x", "--slimimage-x", "slimimage_x", kind, None, "x", None if kind is Kind.FLAG else "X")
    with pytest.raises(ValueError) as raised:
        row.parse(value)
    assert str(raised.value) == message


def test_a_pipe_in_help_does_not_split_the_markdown_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    row = Option("chart", "--slimimage-chart", "slimimage_chart", Kind.PATH, None, "a | b", "PATH")
    monkeypatch.setattr("pytest_slimimage.glue.options.OPTIONS", (row,))
    assert settings_table().splitlines()[-1] == r"| `--slimimage-chart PATH` | `slimimage_chart` | none | a \| b |"
