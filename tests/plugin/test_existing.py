"""Images built elsewhere (by a CI pipeline's own build step, or pulled): checked as they are,
never built, pulled or removed by the plugin."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from tests.plugin.support import block, outcomes, plain_error, write_context

BUSYBOX_DOCKERFILE = 'FROM busybox:latest\nCMD ["echo", "hi"]\n'


@pytest.fixture
def prebuilt(docker_engine: docker.DockerClient) -> Iterator[str]:
    """busybox:latest under a tag of this test's own, as another tool would have left it."""
    tag = f"slimimage-prebuilt-{uuid.uuid4().hex[:10]}:ci"
    docker_engine.images.get("busybox:latest").tag(tag)
    yield tag
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_engine.images.remove(tag, noprune=True)


def test_an_existing_image_is_checked_and_left_in_place(
    pytester: pytest.Pytester, prebuilt: str, docker_engine: docker.DockerClient
) -> None:
    write_context(pytester, "app", BUSYBOX_DOCKERFILE)
    pytester.makepyfile(
        test_existing=f"""
        import pytest
        from pytest_slimimage import assert_runs, existing_image_fixture

        plain = existing_image_fixture({prebuilt!r})
        described = existing_image_fixture({prebuilt!r}, dockerfile="app/Dockerfile")

        @pytest.mark.slimimage(max_size="5MB", no_compilers=True, runnable=True, exec_form=True)
        def test_checked(plain):
            assert not plain.has_dockerfile
            assert_runs(plain, "hi", args=["echo", "hi"])

        @pytest.mark.slimimage(final_base="busybox", lint=["SI004"])
        def test_with_its_dockerfile(described):
            assert described.dockerfile.final_base == "busybox:latest"

        @pytest.mark.slimimage(final_base="busybox")
        def test_final_base_needs_the_dockerfile(plain):
            pass

        def test_missing_image(slimimage_image):
            slimimage_image("slimimage-prebuilt-missing-{uuid.uuid4().hex[:6]}:none")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA")
    assert outcomes(result) == {
        ("PASSED", "test_existing.py::test_checked"),
        ("PASSED", "test_existing.py::test_with_its_dockerfile"),
        ("FAILED", "test_existing.py::test_final_base_needs_the_dockerfile"),
        ("FAILED", "test_existing.py::test_missing_image"),
    }
    needs = plain_error(block(result, "test_final_base_needs_the_dockerfile"), "test_existing.py", "SlimImageError")
    assert needs == (
        "plain: final_base needs the image's Dockerfile; plain was not built from one"
        " (for an existing image, pass the dockerfile= it was built from)"
    )
    missing = plain_error(block(result, "test_missing_image"), "test_existing.py", "SlimImageError")
    assert missing.startswith("image 'slimimage-prebuilt-missing-")
    assert missing.endswith("is not on the engine: build or pull it before the tests (pytest-slimimage never pulls)")
    result.stdout.fnmatch_lines(["slimimage: 0 image build(s), 0 reused, *; 0 image tag(s) cached, 0 older pruned, *"])
    assert prebuilt in docker_engine.images.get(prebuilt).tags  # not removed: the plugin did not make it


def test_an_existing_image_in_the_declarative_form(pytester: pytest.Pytester, prebuilt: str) -> None:
    pytester.makefile(
        ".toml",
        pyproject=f"""
        [tool.slimimage.images.prebuilt]
        image = "{prebuilt}"
        max_size = "5MB"
        runnable = true
        runs = {{ args = ["echo", "hi"], stdout = "hi" }}
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "pyproject.toml::prebuilt::max_size PASSED*",
            "pyproject.toml::prebuilt::runnable PASSED*",
            "pyproject.toml::prebuilt::runs PASSED*",
        ]
    )


def test_context_and_image_together_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        pyproject="""
        [tool.slimimage.images.both]
        context = "."
        image = "x:1"
        max_size = "5MB"
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    both = "give either context (build it) or image (check one already built), not both"
    result.stdout.fnmatch_lines([f"*[[]tool.slimimage.images.both[]]: {both}"])
