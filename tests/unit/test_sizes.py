"""Sizes as people write them, and as ``docker images`` prints them."""

from __future__ import annotations

import pytest

from pytest_slimimage.sizes import format_delta, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("512", 512),
        ("512B", 512),
        ("16kB", 16_000),
        ("74MB", 74_000_000),
        ("2GB", 2_000_000_000),
        ("3TB", 3_000_000_000_000),
        ("1KiB", 1024),
        ("16KiB", 16 * 1024),
        ("1MiB", 1_048_576),
        ("1GiB", 1_073_741_824),
        ("1TiB", 1_099_511_627_776),
    ],
)
def test_units_decimal_and_binary(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1mb", 1_000_000),  # decimal, never a mebibyte
        ("1Mb", 1_000_000),
        ("1KB", 1000),
        ("1kb", 1000),
        ("1mib", 1_048_576),
        ("1MIB", 1_048_576),
        ("1gb", 1_000_000_000),
        ("7b", 7),
    ],
)
def test_units_are_case_insensitive(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5 MiB", 1_572_864),  # 1.5 * 1024 * 1024
        ("74 MB", 74_000_000),
        ("  16kB  ", 16_000),
        ("0.5GB", 500_000_000),
        ("1.25kB", 1250),
        (".5kB", 500),
        ("2.5 GiB", 2_684_354_560),
    ],
)
def test_spaces_and_fractions(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_ints_are_bytes() -> None:
    assert parse_size(0) == 0
    assert parse_size(1_000_000) == 1_000_000


@pytest.mark.parametrize("bad", ["12 parsecs", "", "   ", "-1", "-1MB", "MB", "1.5.2MB", "1e3", "ten MB", "16 k B"])
def test_bad_strings_name_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match="not a size") as info:
        parse_size(bad)
    assert repr(bad) in str(info.value)


def test_bad_unit_message_lists_the_units() -> None:
    with pytest.raises(ValueError) as info:
        parse_size("12 parsecs")
    message = str(info.value)
    assert message.startswith("not a size: '12 parsecs' (units: ")
    for unit in ("kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"):
        assert unit in message


@pytest.mark.parametrize("bad", [True, False, None, 1.5, [16], b"16kB"])
def test_bad_types_name_the_value(bad: object) -> None:
    with pytest.raises(ValueError, match="not a size") as info:
        parse_size(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


def test_negative_int_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not a size: -1 \(a size cannot be negative\)"):
        parse_size(-1)


@pytest.mark.parametrize(
    ("num_bytes", "expected"),
    [
        (0, "0B"),
        (1, "1B"),
        (999, "999B"),
        (1000, "1kB"),
        (16384, "16.4kB"),
        (762_000, "762kB"),
        (761_700, "762kB"),
        (99_949, "99.9kB"),
        (999_499, "999kB"),
        (999_500, "1MB"),  # rounds up into the next unit rather than printing 1e+03kB
        (1_000_000, "1MB"),
        (7_456_123, "7.46MB"),
        (74_200_000, "74.2MB"),
        (457_715_375, "458MB"),
        (1_500_000_000, "1.5GB"),
        (2_000_000_000_000, "2TB"),
        (1500.0, "1.5kB"),
    ],
)
def test_format_size_like_docker_images(num_bytes: int, expected: str) -> None:
    assert format_size(num_bytes) == expected


def test_format_size_negative() -> None:
    assert format_size(-5000) == "-5kB"
    assert format_size(-12) == "-12B"


@pytest.mark.parametrize(
    ("num_bytes", "expected"),
    [(0, "+0B"), (5000, "+5kB"), (1_200_000, "+1.2MB"), (-300_000, "-300kB"), (-1, "-1B")],
)
def test_format_delta_signs(num_bytes: int, expected: str) -> None:
    assert format_delta(num_bytes) == expected


@pytest.mark.parametrize("text", ["16kB", "74.2MB", "458MB", "1.5GB", "999B"])
def test_format_then_parse_round_trips_docker_text(text: str) -> None:
    assert format_size(parse_size(text)) == text
