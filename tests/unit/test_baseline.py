"""Size baselines: stable, sorted, diff-friendly JSON; malformed files named; allowed growth parsed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_slimimage.baseline import (
    VERSION,
    Baseline,
    BaselineEntry,
    BaselineLayer,
    Growth,
    load_baseline,
    parse_growth,
    write_baseline,
)
from pytest_slimimage.errors import SlimImageError

ZEBRA = BaselineEntry(2_005_472, "busybox:latest", (BaselineLayer("COPY file:abc in /payload", 20_000),))
ALPHA = BaselineEntry(761_896, "scratch", (BaselineLayer("COPY file:def in /hello", 761_896),))

EXPECTED_TEXT = """\
{
  "images": {
    "alpha": {
      "final_base": "scratch",
      "layers": [
        {
          "instruction": "COPY file:def in /hello",
          "size": 761896
        }
      ],
      "size": 761896
    },
    "zebra": {
      "final_base": "busybox:latest",
      "layers": [
        {
          "instruction": "COPY file:abc in /payload",
          "size": 20000
        }
      ],
      "size": 2005472
    }
  },
  "version": 1
}
"""


def test_dump_is_sorted_indented_and_ends_with_a_newline() -> None:
    assert Baseline({"zebra": ZEBRA, "alpha": ALPHA}).dumps() == EXPECTED_TEXT


def test_dump_does_not_depend_on_insertion_order() -> None:
    assert Baseline({"zebra": ZEBRA, "alpha": ALPHA}).dumps() == Baseline({"alpha": ALPHA, "zebra": ZEBRA}).dumps()


def test_layers_keep_their_order_bottom_to_top() -> None:
    entry = BaselineEntry(3, "scratch", (BaselineLayer("RUN b", 2), BaselineLayer("RUN a", 1)))
    data = json.loads(Baseline({"x": entry}).dumps())
    assert [la["instruction"] for la in data["images"]["x"]["layers"]] == ["RUN b", "RUN a"]


def test_write_then_load_round_trips_and_rewrites_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "sizes" / "baseline.json"  # the folder is made
    write_baseline(path, Baseline({"zebra": ZEBRA, "alpha": ALPHA}))
    assert path.read_text(encoding="utf-8") == EXPECTED_TEXT
    loaded = load_baseline(path)
    assert loaded.images == {"alpha": ALPHA, "zebra": ZEBRA}
    write_baseline(path, loaded)
    assert path.read_text(encoding="utf-8") == EXPECTED_TEXT
    assert sorted(p.name for p in path.parent.iterdir()) == ["baseline.json"]  # no temporary file left


def test_non_ascii_instructions_are_kept_readable(tmp_path: Path) -> None:
    entry = BaselineEntry(1, "", (BaselineLayer("RUN echo héllo", 1),))
    assert "héllo" in Baseline({"x": entry}).dumps()


def test_updated_replaces_and_adds_entries_and_keeps_the_others() -> None:
    grown = BaselineEntry(3_000_000, "busybox:latest")
    new = BaselineEntry(5, "scratch")
    updated = Baseline({"zebra": ZEBRA, "alpha": ALPHA}).updated({"zebra": grown, "beta": new})
    assert updated.images == {"alpha": ALPHA, "zebra": grown, "beta": new}
    assert updated.get("zebra") == grown
    assert updated.get("missing") is None


def test_a_missing_file_is_an_empty_baseline(tmp_path: Path) -> None:
    assert load_baseline(tmp_path / "nope.json").images == {}


def test_a_minimal_entry_needs_only_the_size(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"version": 1, "images": {"x": {"size": 12}}}')
    assert load_baseline(path).images == {"x": BaselineEntry(12)}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("[]", 'expected {"version": 1, "images": {...}}'),
        ('{"images": {}}', 'expected {"version": 1, "images": {...}}'),
        ('{"version": 1, "images": []}', 'expected {"version": 1, "images": {...}}'),
        ('{"version": 2, "images": {}}', "version 2 is not one this pytest-slimimage reads (version 1)"),
        ('{"version": "1", "images": {}}', "version '1' is not one this pytest-slimimage reads (version 1)"),
        ('{"version": 1, "images": {"x": {}}}', "missing key 'size'"),
        ('{"version": 1, "images": {"x": {"size": "big"}}}', "x: size must be a number of bytes, got 'big'"),
        ('{"version": 1, "images": {"x": {"size": -1}}}', "x: size must be a number of bytes, got -1"),
        ('{"version": 1, "images": {"x": {"size": true}}}', "x: size must be a number of bytes, got True"),
        (
            '{"version": 1, "images": {"x": {"size": 1, "layers": [{"instruction": "RUN a", "size": 1.5}]}}}',
            "x: a layer's size must be a number of bytes, got 1.5",
        ),
        ('{"version": 1, "images": {"x": {"size": 1, "layers": [{"size": 1}]}}}', "missing key 'instruction'"),
        ('{"version": 1, "images": {"x": 3}}', 'x: expected {"size": ..., "layers": [...]}, got 3'),
    ],
)
def test_a_malformed_file_is_an_error_naming_it(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(text)
    with pytest.raises(SlimImageError) as excinfo:
        load_baseline(path)
    assert str(excinfo.value) == (
        f"the size baseline {path} is not valid: {problem}; rewrite it with --slimimage-update-baseline"
    )


def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "baseline.json"
    folder.mkdir()  # a folder where the file should be
    with pytest.raises(SlimImageError) as excinfo:
        load_baseline(folder)
    assert str(excinfo.value).startswith(f"cannot read the size baseline {folder}: [Errno 21] Is a directory")


def test_version_constant_is_what_is_written() -> None:
    assert json.loads(Baseline().dumps()) == {"images": {}, "version": VERSION}


# ---------------------------------------------------------------------------------------- growth
@pytest.mark.parametrize(
    ("value", "text", "percent", "size"),
    [
        ("5%", "5%", 5.0, None),
        (" 2.5 % ", "2.5 %", 2.5, None),
        (".5%", ".5%", 0.5, None),
        ("0%", "0%", 0.0, None),
        ("2MB", "2MB", None, 2_000_000),
        ("512 KiB", "512 KiB", None, 524_288),
        (2_000_000, "2MB", None, 2_000_000),
        (0, "0B", None, 0),
    ],
)
def test_parse_growth(value: object, text: str, percent: float | None, size: int | None) -> None:
    growth = parse_growth(value)
    assert growth == Growth(text, percent=percent, size=size)
    assert str(growth) == text


@pytest.mark.parametrize("value", ["-5%", "5%%", "%", "five percent", "2XB", "", True, None, 1.5, [5], -1])
def test_bad_growth_is_a_value_error_naming_the_value(value: object) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_growth(value)
    assert str(excinfo.value) == (f"not an allowed growth: {value!r} (a percentage like '5%' or a size like '2MB')")


@pytest.mark.parametrize(
    ("growth", "baseline", "allowed"),
    [
        ("5%", 2_000_000, 100_000),
        ("5%", 999, 49),  # rounded down: never more than the percentage
        ("0%", 2_000_000, 0),
        ("2MB", 10, 2_000_000),
        ("150%", 100, 150),
    ],
)
def test_allowance(growth: str, baseline: int, allowed: int) -> None:
    assert parse_growth(growth).allowance(baseline) == allowed
