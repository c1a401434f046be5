"""The build cache's pure parts: the tag scheme, the key (content, builder, base images), which
images a build reads, recency and what is pruned; and the summary line that reports it. The engine
side is proven in tests/integration/test_build_cache.py."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_slimimage.dockerfile.model import parse_dockerfile
from pytest_slimimage.engine.buildcache import (
    KEEP_BUILDS,
    cache_key,
    cache_tag,
    external_images,
    recency,
    repository_for,
    to_prune,
)
from pytest_slimimage.glue.summary import Summary

KEY = "0123456789abcdef" * 4


# ------------------------------------------------------------------------------------- the tag
def test_a_tag_is_the_fixture_and_the_key() -> None:
    assert cache_tag("hello", KEY) == "pytest-slimimage/hello:0123456789ab"
    assert repository_for("Hello___World") == "pytest-slimimage/hello-world"
    assert re.fullmatch(r"pytest-slimimage/[a-z0-9._-]+:[0-9a-f]{12}", cache_tag("_x.-y", KEY))
    assert KEEP_BUILDS == 3


# ------------------------------------------------------------------------------------- the key
def test_the_key_covers_content_builder_and_each_base_id() -> None:
    bases = {"busybox:latest": "sha256:aa", "gcc:latest": "sha256:bb"}
    key = cache_key(KEY, "legacy", bases)
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert cache_key(KEY, "legacy", dict(reversed(bases.items()))) == key  # order does not matter
    assert cache_key(KEY, "buildkit", bases) != key
    assert cache_key(KEY[::-1], "legacy", bases) != key
    assert cache_key(KEY, "legacy", {**bases, "gcc:latest": "sha256:cc"}) != key  # the base was rebuilt
    assert cache_key(KEY, "legacy", {**bases, "gcc:latest": "absent"}) != key


def test_the_images_a_build_reads(tmp_path: Path) -> None:
    text = """\
FROM gcc:latest AS build
RUN make
FROM debian:bookworm-slim AS unused
FROM build AS tested
FROM scratch
COPY --from=build /hello /hello
COPY --from=tested /x /x
COPY --from=alpine:3.19 /etc/os-release /os-release
"""
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    assert external_images(parse_dockerfile(path)) == ("alpine:3.19", "gcc:latest")
    assert external_images(parse_dockerfile(path, target="unused")) == ("debian:bookworm-slim",)
    path.write_text("ARG BASE=busybox:latest\nFROM ${BASE}\n")
    assert external_images(parse_dockerfile(path)) == ("busybox:latest",)
    assert external_images(parse_dockerfile(path, build_args={"BASE": "debian:bookworm-slim"})) == (
        "debian:bookworm-slim",
    )
    path.write_text("FROM scratch\nCOPY hello /\n")
    assert external_images(parse_dockerfile(path)) == ()


# ------------------------------------------------------------------------------------- pruning
def test_recency_is_the_last_tag_time_else_the_creation_time() -> None:
    tagged = {"Created": "2026-01-01T00:00:00.5Z", "Metadata": {"LastTagTime": "2026-03-01T10:00:00.123456789Z"}}
    assert recency(tagged) == "2026-03-01T10:00:00.123456789"
    never = {"Created": "2026-01-01T00:00:00.5Z", "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}}
    assert recency(never) == "2026-01-01T00:00:00.500000000"
    assert recency({"Created": "2026-01-01T00:00:00Z"}) == "2026-01-01T00:00:00.000000000"
    assert recency({}) == ""
    # fractions of different lengths still sort in time order
    assert recency({"Created": "2026-01-01T00:00:00.5Z"}) > recency({"Created": "2026-01-01T00:00:00.45Z"})


def test_all_but_the_most_recently_used_are_pruned() -> None:
    recencies = {
        "pytest-slimimage/app:a": "2026-01-01T00:00:01.000000000",
        "pytest-slimimage/app:b": "2026-01-01T00:00:05.000000000",
        "pytest-slimimage/app:c": "2026-01-01T00:00:03.000000000",
        "pytest-slimimage/app:d": "2026-01-01T00:00:04.000000000",
        "pytest-slimimage/app:e": "",  # vanished while listed: pruned first
    }
    assert to_prune(recencies, 3) == ["pytest-slimimage/app:a", "pytest-slimimage/app:e"]
    assert to_prune(recencies, 5) == []
    assert len(to_prune(recencies, 0)) == 5


# ------------------------------------------------------------------------------------- summary
def test_the_summary_counts_builds_reuses_and_the_cache() -> None:
    summary = Summary(checks=4, failed=1, used=True)
    worker = Summary(
        builds=1,
        reused=2,
        pruned=1,
        cached=["pytest-slimimage/a:1", "pytest-slimimage/b:2", "pytest-slimimage/c:3"],
        repositories=["pytest-slimimage/a", "pytest-slimimage/b", "pytest-slimimage/c"],
        used=True,
    )
    summary.merge(worker.to_json())
    summary.merge(Summary(cached=["pytest-slimimage/a:1"], used=True).to_json())  # read from gw0's record
    assert summary.lines(keep_images=False) == [
        "slimimage: 1 image build(s), 2 reused, 4 check(s) (1 failed); 3 image tag(s) cached, 1 older pruned,"
        " 0 leftover container(s) removed"
    ]
    assert summary.lines(keep_images=True) == [
        "slimimage: 1 image build(s), 2 reused, 4 check(s) (1 failed); 3 image tag(s) cached,"
        " older builds kept (--slimimage-keep-images), 0 leftover container(s) removed"
    ]
    assert Summary().lines(keep_images=False) == []
