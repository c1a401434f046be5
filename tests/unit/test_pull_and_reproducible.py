"""``max_pull_size`` and ``reproducible`` over facts built by hand (no engine): pass and failure
texts, validation, what differs between two builds and why, and the pull column in the reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import jsonschema
import pytest

from pytest_slimimage.analysis.reproducibility import ADDED, MISSING, compare, likely_causes
from pytest_slimimage.checks.pull_size import MAX_PULL_SIZE, check_max_pull_size
from pytest_slimimage.checks.reproducible import REPRODUCIBLE, check_reproducible
from pytest_slimimage.checks.spec import SpecError, parse_spec
from pytest_slimimage.dockerfile.model import parse_dockerfile
from pytest_slimimage.facts import FileState, ImageConfig, ImageFacts, Layer, PulledLayer, Rebuild
from pytest_slimimage.report import REPORT_SCHEMA, ImageRecord, json_report, markdown_report, svg_chart, terminal_lines

DOCKERFILE = """\
FROM busybox:latest
RUN echo hi > /greeting
RUN date > /built-at
CMD ["cat", "/built-at"]
"""
HISTORY = (
    Layer("/bin/sh -c #(nop) ADD file:abc in / ", 1_990_000, False, from_base=True),
    Layer('/bin/sh -c #(nop)  CMD ["sh"]', 0, True, from_base=True),
    Layer("RUN /bin/sh -c echo hi > /greeting # buildkit", 3, False),
    Layer("RUN /bin/sh -c date > /built-at # buildkit", 30, False),
    Layer('CMD ["cat", "/built-at"]', 0, True),
)
PULLED = (
    PulledLayer("sha256:" + "a" * 64, 2_000_000, 1_030_000),
    PulledLayer("sha256:" + "b" * 64, 2_048, 180),
    PulledLayer("sha256:" + "c" * 64, 2_048, 190),
)


def facts(**changes: object) -> ImageFacts:
    base = ImageFacts(
        name="app",
        id="sha256:" + "1" * 64,
        size=1_990_033,
        config=ImageConfig(cmd=("cat", "/built-at")),
        layers=HISTORY,
        dockerfile=parse_dockerfile("Dockerfile", text=DOCKERFILE),
        pull=PULLED,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- max_pull_size
def test_pull_size_pass() -> None:
    result = check_max_pull_size(facts(), "5MB")
    assert result.passed
    assert result.headline == "app: max_pull_size: 1.03MB to pull (compressed), within 5MB (headroom 3.97MB)"
    assert result.details == {"actual": 1_030_370, "limit": 5_000_000, "size": 1_990_033, "tar_bytes": 2_004_096}
    assert MAX_PULL_SIZE.record(result) == {"pull_size": 1_030_370, "pull_limit": 5_000_000}


def test_pull_size_failure_names_the_largest_compressed_layers_and_their_lines() -> None:
    result = check_max_pull_size(facts(), "1MB")
    assert not result.passed
    assert result.message().splitlines() == [
        "app: max_pull_size: 1.03MB to pull (1030370 bytes compressed) exceeds the budget of 1MB by +30.4kB",
        "  1.99MB on the engine; 1.03MB compressed (51% of its 2MB of layer tars): each layer tar gzip-compressed"
        " as a push sends it (zlib level 6)",
        "  largest compressed layers:",
        "    1.03MB  (of 2MB)  ADD file:abc in / (base busybox:latest)",
        "      190B  (of 2.05kB)  RUN date > /built-at (Dockerfile line 3)",
        "      180B  (of 2.05kB)  RUN echo hi > /greeting (Dockerfile line 2)",
        "  hint: the base image's layers are 1.03MB of it: start the final stage from a smaller base (scratch,"
        " distroless, busybox) and COPY --from the build stage only what the program needs",
    ]


def test_a_layer_repeated_is_counted_once_and_own_layers_get_the_other_hint() -> None:
    own = (PulledLayer("sha256:" + "a" * 64, 9_000_000, 4_000_000),)
    layers = (Layer("COPY big /big # buildkit", 9_000_000, False), Layer("COPY big /big2 # buildkit", 9_000_000, False))
    twice = facts(layers=layers, dockerfile=None, pull=own * 2)
    result = check_max_pull_size(twice, "1MB")
    assert result.details["actual"] == 4_000_000
    assert result.message().splitlines()[3:] == [
        "       4MB  (of 9MB)  COPY big /big (build)",
        "  hint: shrink the largest compressed layers above: build in a separate stage and COPY --from only the"
        " artifact, delete caches in the RUN that makes them; files already compressed (.gz, .zip, .jar, images)"
        " do not shrink when pushed",
    ]


def test_sizes_read_from_a_manifest_say_so() -> None:
    from_manifest = tuple(replace(layer, source="manifest") for layer in PULLED)
    lines = check_max_pull_size(facts(pull=from_manifest), 1).message().splitlines()
    assert lines[1].endswith("(51% of its 2MB of layer tars): as the archive's manifest lists the compressed layers")


def test_pull_size_without_the_layers_read_is_an_error() -> None:
    with pytest.raises(ValueError, match="max_pull_size needs the compressed sizes of app's layers"):
        check_max_pull_size(facts(pull=None), "1MB")


@pytest.mark.parametrize("value", ["12 parsecs", -1, [1]])
def test_pull_size_values_are_validated_like_max_size(value: object) -> None:
    with pytest.raises(SpecError, match=r"^here: max_pull_size"):
        parse_spec({"max_pull_size": value}, where="here")


# --------------------------------------------------------------------------------- reproducible
def state(content: str = "x", *, layer: int = 1, **changes: object) -> FileState:
    made = FileState("file", 0o644, 0, 0, len(content), "sha256:" + content * 64, layer=layer, mtime=100)
    return replace(made, **changes)  # type: ignore[arg-type]


FIRST = {
    "/etc": state(kind="dir", digest="", size=0, layer=0),
    "/greeting": state("a"),
    "/built-at": state("b", layer=2),
}


def rebuilt(files: dict[str, FileState]) -> ImageFacts:
    return facts(file_states=FIRST, rebuild=Rebuild("sha256:" + "2" * 64, files))


def test_the_same_files_pass_and_mtimes_count_only_when_strict() -> None:
    later = {path: replace(s, mtime=200) for path, s in FIRST.items()}
    result = check_reproducible(rebuilt(later), "content")
    assert result.passed
    assert result.headline == (
        "app: reproducible: a rebuild without cache gives the same 3 paths (types, modes, owners and content)"
    )
    strict = check_reproducible(rebuilt(later), "strict")
    assert not strict.passed
    assert strict.message().splitlines()[2] == (
        "  /built-at: mtime 1970-01-01 00:01:40 -> 1970-01-01 00:03:20 UTC; written by RUN date > /built-at"
        " (Dockerfile line 3)"
    )
    assert strict.hint.startswith("modification times differ (strict)")


def test_a_file_with_other_content_fails_with_its_layer_and_line() -> None:
    result = check_reproducible(rebuilt({**FIRST, "/built-at": state("c", layer=2)}), True)
    assert result.message().splitlines() == [
        "app: reproducible: building again without cache changes 1 of 3 paths",
        f"  built again without cache as sha256:{'2' * 12} (the image is sha256:{'1' * 12}); compared types, modes,"
        " owners and content, not modification times",
        "  /built-at: content differs; written by RUN date > /built-at (Dockerfile line 3)",
        "  hint: a RUN step writes the time or something random into a file (`date > /built-at`, a version stamp,"
        " a generated id): derive it from SOURCE_DATE_EPOCH or a build ARG instead of the clock",
    ]
    assert result.details["differences"] == [{"path": "/built-at", "differs": ["content"]}]


def test_paths_only_in_one_build_modes_and_owners() -> None:
    second = {
        "/etc": replace(FIRST["/etc"], mode=0o700),
        "/greeting": replace(FIRST["/greeting"], uid=1000, gid=1000),
        "/extra.pyc": state("e"),
    }
    differences = compare(FIRST, second)
    assert [(d.path, d.aspects, d.describe()) for d in differences] == [
        ("/built-at", (MISSING,), MISSING),
        ("/etc", ("mode",), "mode 0644 -> 0700"),
        ("/extra.pyc", (ADDED,), ADDED),
        ("/greeting", ("owner",), "owner 0:0 -> 1000:1000"),
    ]
    causes = likely_causes(differences)
    assert causes[0].startswith("owners or modes differ")
    assert any(cause.startswith("Python bytecode (.pyc)") for cause in causes)
    result = check_reproducible(rebuilt(second), True)
    assert result.hint == causes[0]
    assert [line for line in result.evidence if line.startswith("also likely: ")] == [
        f"also likely: {cause}" for cause in causes[1:]
    ]


def test_the_usual_causes_are_named_by_path() -> None:
    def cause(path: str) -> str:
        return likely_causes(compare({path: state("a")}, {path: state("b")}))[0]

    assert cause("/var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease").startswith("package manager state")
    assert cause("/usr/lib/python3/__pycache__/x.cpython-311.pyc").startswith("Python bytecode")
    assert cause("/usr/local/bin/app").startswith("compiled files embed build ids")


def test_long_lists_are_cut() -> None:
    first = {f"/f{n:02}": state("a") for n in range(14)}
    second = {f"/f{n:02}": state("b") for n in range(14)}
    result = check_reproducible(facts(file_states=first, rebuild=Rebuild("sha256:" + "2" * 64, second)), True)
    assert result.evidence[-1] == "... and 4 more paths"
    assert len(result.details["differences"]) == 10 and result.details["different"] == 14


def test_reproducible_without_a_rebuild_is_an_error() -> None:
    with pytest.raises(ValueError, match="reproducible needs app built a second time"):
        check_reproducible(facts(), True)


@pytest.mark.parametrize(("value", "expected"), [(True, "content"), ("strict", "strict"), (False, None)])
def test_reproducible_values(value: object, expected: str | None) -> None:
    assert REPRODUCIBLE.expectation(value) == expected


@pytest.mark.parametrize("value", ["yes", 1, ["strict"]])
def test_reproducible_rejects_other_values(value: object) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"reproducible": value}, where="here")
    assert str(info.value) == f'here: reproducible expects True, False or "strict", got {value!r}'


# -------------------------------------------------------------------------------------- reports
def records() -> list[ImageRecord]:
    pulled = ImageRecord("app", "sha256:" + "a" * 64, 1_990_033, limit=5_000_000, pull_size=1_030_370)
    pulled.set_columns({"pull_limit": 2_000_000})
    pulled.set_columns({"pull_limit": 3_000_000})  # the tightest budget wins
    return [pulled, ImageRecord("other", "sha256:" + "b" * 64, 700_000)]


def test_the_pull_size_stands_beside_the_size() -> None:
    lines = terminal_lines(records())
    assert lines[0].split()[:4] == ["image", "size", "pull", "budget"]
    assert lines[2].split()[:3] == ["app", "1.99MB", "1.03MB/2MB"]
    assert lines[3].split()[:3] == ["other", "700kB", "-"]
    assert terminal_lines(records(), verbose=False)[0] == "app: 1.99MB/5MB, pull 1.03MB/2MB"
    table = markdown_report(records()).splitlines()
    assert table[2].startswith("| image | size | pull | budget |")
    assert table[4].startswith("| `app` | 1.99MB | 1.03MB/2MB | 5MB |")
    assert "| pull |" not in markdown_report([ImageRecord("x", "sha256:" + "c" * 64, 1)])


def test_the_chart_draws_the_pull_size_and_its_budget() -> None:
    root = ET.fromstring(svg_chart(records()))
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "app: pulls 1.03MB (compressed)" in titles
    assert "pull budget 2MB" in titles


def test_the_json_report_carries_the_pull_size() -> None:
    data = json.loads(json_report(records()))
    jsonschema.validate(data, REPORT_SCHEMA)
    assert (data["images"][0]["pull_size"], data["images"][0]["pull_limit"]) == (1_030_370, 2_000_000)
    assert data["images"][1]["pull_size"] is None
    merged = ImageRecord("app", "sha256:" + "a" * 64, 1, pull_limit=4_000_000)
    merged.merge(records()[0])
    assert (merged.pull_size, merged.pull_limit) == (1_030_370, 2_000_000)
