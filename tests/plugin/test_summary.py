"""The ``slimimage:`` terminal summary, and what is left on the engine after the session:
nothing it tagged, unless ``--slimimage-keep-images`` (or its ini key) keeps the exact tags printed."""

from __future__ import annotations

import contextlib

import docker
import docker.errors
import pytest

from tests.plugin.support import EXEC_FORM_DOCKERFILE, SUITE_WORD, summary_lines, write_context

INNER = f"""
import pytest
from pytest_slimimage import image_fixture

kept = image_fixture("kept")


@pytest.mark.slimimage(exec_form=True, runs="{SUITE_WORD}")
def test_image(kept, request):
    assert kept.tags == (kept.tag,)
    (request.config.rootpath / "tag.txt").write_text(kept.tag)
"""


def build_one(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    """Run a session building one image; its outcome and the image's tag (as the test saw it)."""
    write_context(pytester, "kept", EXEC_FORM_DOCKERFILE)
    pytester.makepyfile(test_summary=INNER)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    tag = (pytester.path / "tag.txt").read_text()
    assert tag.startswith("pytest-slimimage/kept:"), tag
    return result, tag


def test_summary_says_images_were_removed(pytester: pytest.Pytester, docker_engine: docker.DockerClient) -> None:
    result, tag = build_one(pytester)
    assert summary_lines(result) == [
        "slimimage: 1 image build(s), 2 check(s) (0 failed); removed 1 image tag(s) and 0 leftover container(s)"
    ]
    with pytest.raises(docker.errors.ImageNotFound):
        docker_engine.images.get(tag)


@pytest.mark.parametrize("how", ["option", "ini"])
def test_keep_images_keeps_the_printed_tags(
    pytester: pytest.Pytester, docker_engine: docker.DockerClient, request: pytest.FixtureRequest, how: str
) -> None:
    if how == "ini":
        pytester.makeini("[pytest]\nslimimage_keep_images = true\n")
    result, tag = build_one(pytester, *(["--slimimage-keep-images"] if how == "option" else []))
    request.addfinalizer(lambda: remove_tag(docker_engine, tag))

    assert summary_lines(result) == [
        "slimimage: 1 image build(s), 2 check(s) (0 failed); kept 1 image tag(s) (--slimimage-keep-images),"
        " removed 0 leftover container(s)",
        f"slimimage: kept {tag}",
    ]
    assert tag in docker_engine.images.get(tag).tags


def remove_tag(client: docker.DockerClient, tag: str) -> None:
    """Untag what this test kept, and only that: untagged parents are other builds' cache."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(tag, noprune=True)


def test_failed_cleanup_is_reported_not_an_internal_error(
    pytester: pytest.Pytester, docker_engine: docker.DockerClient, request: pytest.FixtureRequest
) -> None:
    """An engine that fails at the end of the session: one summary line says so, no INTERNALERROR."""
    pytester.makeconftest(
        """
        from pytest_slimimage.engine.builds import ImageBuilder

        def broken(self):
            raise RuntimeError("the engine went away")

        ImageBuilder.remove_containers = broken  # a subprocess of its own: nothing to restore
        """
    )
    write_context(pytester, "kept", EXEC_FORM_DOCKERFILE)
    pytester.makepyfile(test_summary=INNER)
    result = pytester.runpytest_subprocess()
    tag = (pytester.path / "tag.txt").read_text()
    request.addfinalizer(lambda: remove_tag(docker_engine, tag))

    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    first, failed = summary_lines(result)
    assert first.startswith("slimimage: 1 image build(s), 2 check(s) (0 failed); removed 0 image tag(s)")
    assert failed.startswith("slimimage: cleanup failed: RuntimeError: the engine went away (images are labelled ")
