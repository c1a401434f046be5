"""The ``slimimage:`` terminal summary, and what is left on the engine after the session: the
images it built or reused, tagged as the build cache; ``--slimimage-keep-images`` (or its ini key)
says that no older build is pruned."""

from __future__ import annotations

import docker
import pytest

from tests.plugin.support import EXEC_FORM_DOCKERFILE, SUITE_WORD, cache_masked, write_context

INNER = f"""
import pytest
from pytest_slimimage import image_fixture

kept = image_fixture("kept")


@pytest.mark.slimimage(exec_form=True, runs="{SUITE_WORD}")
def test_image(kept, request):
    assert kept.tag in kept.tags  # its own cache tag (other fixtures of the same content have theirs)
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


def test_summary_says_what_stays_cached(pytester: pytest.Pytester, docker_engine: docker.DockerClient) -> None:
    result, tag = build_one(pytester)
    assert cache_masked(result) == [
        "slimimage: 1 image(s) built or reused, 2 check(s) (0 failed); 1 image tag(s) cached, <n> older pruned,"
        " 0 leftover container(s) removed"
    ]
    assert tag in docker_engine.images.get(tag).tags  # the build cache: the next session finds it


@pytest.mark.parametrize("how", ["option", "ini"])
def test_keep_images_says_no_older_build_is_pruned(
    pytester: pytest.Pytester, docker_engine: docker.DockerClient, how: str
) -> None:
    if how == "ini":
        pytester.makeini("[pytest]\nslimimage_keep_images = true\n")
    result, tag = build_one(pytester, *(["--slimimage-keep-images"] if how == "option" else []))

    assert cache_masked(result) == [
        "slimimage: 1 image(s) built or reused, 2 check(s) (0 failed); 1 image tag(s) cached,"
        " older builds kept (--slimimage-keep-images), 0 leftover container(s) removed",
    ]
    assert tag in docker_engine.images.get(tag).tags


def test_failed_cleanup_is_reported_not_an_internal_error(
    pytester: pytest.Pytester, docker_engine: docker.DockerClient
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

    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    first, failed = cache_masked(result)
    assert first.startswith("slimimage: 1 image(s) built or reused, 2 check(s) (0 failed); 1 image tag(s) cached, ")
    assert failed.startswith("slimimage: cleanup failed: RuntimeError: the engine went away (containers are labelled ")
