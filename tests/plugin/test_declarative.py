"""The declarative form as pytest items: a repository with only a ``[tool.slimimage]`` table and no
Python tests gets one item per image and check (``pyproject.toml::hello::max_size``), with the
marker's verdicts and failure text; a bad table is a collection error naming file, image and key."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import docker
import pytest

from pytest_slimimage.sizes import format_size
from tests.plugin.support import SUITE_WORD, block, cache_masked, outcomes, plain_error

HELLO_DOCKERFILE = f'FROM busybox:latest\nCOPY payload /payload\nCMD ["echo", "{SUITE_WORD}"]\n'
SHELL_DOCKERFILE = f"FROM busybox:latest\nCMD echo {SUITE_WORD}\n"

PYPROJECT = f"""\
[project]
name = "images-only"
version = "0"

[tool.slimimage.images.hello]
context = "hello"
max_size = "10MB"
warn_size = "1kB"
final_base = "busybox"
exec_form = true
no_compilers = true
runs = {{ stdout = "{SUITE_WORD}" }}

[tool.slimimage.images.shell]   # shell-form CMD, over a tiny budget
context = "shell"
max_size = "1kB"
exec_form = true
runs = "{SUITE_WORD}"
"""

HELLO_CHECKS = ("max_size", "warn_size", "final_base", "exec_form", "no_compilers", "runs")
HELLO_IDS = [f"pyproject.toml::hello::{check}" for check in HELLO_CHECKS]
SHELL_IDS = [f"pyproject.toml::shell::{check}" for check in ("max_size", "exec_form", "runs")]


def images_only(pytester: pytest.Pytester) -> None:
    """The repository: a pyproject.toml and two build contexts, no Python at all."""
    pytester.makefile(".toml", pyproject=PYPROJECT)
    hello = pytester.mkdir("hello")
    (hello / "Dockerfile").write_text(HELLO_DOCKERFILE)
    (hello / "payload").write_bytes(b"\0" * 10_000)
    shell = pytester.mkdir("shell")
    (shell / "Dockerfile").write_text(SHELL_DOCKERFILE)


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and not line.startswith(("ERROR", "FAILED"))]


# ------------------------------------------------------------------------ collection (no engine needed)
def test_one_item_per_image_and_check(pytester: pytest.Pytester) -> None:
    images_only(pytester)
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert collected(result) == [*HELLO_IDS, *SHELL_IDS]


def test_a_global_max_growth_adds_a_check_to_every_image(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        pyproject='[tool.slimimage]\nmax_growth = "5%"\n\n'
        '[tool.slimimage.images.a]\ncontext = "a"\nexec_form = true\n\n'
        '[tool.slimimage.images.b]\ncontext = "b"\nmax_growth = "2MB"\n',
    )
    result = pytester.runpytest("--collect-only", "-q")
    assert collected(result) == [
        "pyproject.toml::a::max_growth",
        "pyproject.toml::a::exec_form",
        "pyproject.toml::b::max_growth",
    ]


def test_select_one_check_by_node_id(pytester: pytest.Pytester) -> None:
    images_only(pytester)
    result = pytester.runpytest("--collect-only", "-q", "pyproject.toml::shell::exec_form")
    assert collected(result) == ["pyproject.toml::shell::exec_form"]
    result = pytester.runpytest("--collect-only", "-q", "-k", "hello and runs")
    assert collected(result) == ["pyproject.toml::hello::runs"]


@pytest.mark.parametrize(
    "text",
    [
        '[images.app]\ncontext = "app"\nexec_form = true\n',
        '[tool.slimimage.images.app]\ncontext = "app"\nexec_form = true\n',
    ],
    ids=["bare", "prefixed"],
)
def test_slimimage_toml_is_collected_with_or_without_the_prefix(pytester: pytest.Pytester, text: str) -> None:
    pytester.makefile(".toml", slimimage=text)
    result = pytester.runpytest("--collect-only", "-q")
    assert collected(result) == ["slimimage.toml::app::exec_form"]


def test_only_the_rootdir_files_unless_named(pytester: pytest.Pytester) -> None:
    """A vendored project's pyproject.toml deeper in the tree is not a gate of this repository."""
    table = '[tool.slimimage.images.deep]\ncontext = "deep"\nexec_form = true\n'
    pytester.makeini("[pytest]\n")  # the rootdir stays here when vendor/pyproject.toml is named
    pytester.mkdir("vendor")
    (pytester.path / "vendor" / "pyproject.toml").write_text(table)
    assert collected(pytester.runpytest("--collect-only", "-q")) == []
    assert collected(pytester.runpytest("--collect-only", "-q", "vendor/pyproject.toml")) == [
        "vendor/pyproject.toml::deep::exec_form"
    ]


def test_testpaths_naming_the_pyproject_collects_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        pyproject='[tool.pytest.ini_options]\ntestpaths = ["tests", "pyproject.toml"]\n\n'
        '[tool.slimimage.images.hello]\ncontext = "hello"\nexec_form = true\n',
    )
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_plain.py").write_text("def test_plain():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert collected(result) == ["tests/test_plain.py::test_plain", "pyproject.toml::hello::exec_form"]


def test_a_pyproject_without_the_table_is_not_collected(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\nslimimage_baseline = "sizes.json"\n')
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_without_the_plugin_nothing_is_collected(pytester: pytest.Pytester) -> None:
    images_only(pytester)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:slimimage")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "pyproject",
            '[tool.slimimage.images.hello]\ncontext = "hello"\nmax_sise = "10MB"\n',
            "{path} [tool.slimimage.images.hello]: unknown keyword 'max_sise' (did you mean 'max_size'?);"
            " known keywords: max_size, warn_size, max_growth, final_base, exec_form, no_compilers, no_shell,"
            " no_package_manager, non_root, no_setuid, no_secrets, lint, runnable, max_waste, max_pull_size,"
            " reproducible, runs, serves, healthy, context, image, archive, dockerfile, target, build_args, builder,"
            " secrets, platform, platforms, no_cache",
        ),
        (
            "pyproject",
            '[tool.slimimage.images.hello]\ncontext = "hello"\nmax_size = "lots"\n',
            "{path} [tool.slimimage.images.hello]: max_size: not a size: 'lots' (units: B, kB, MB, GB, TB"
            " (powers of 1000, as `docker images` shows) or KiB, MiB, GiB, TiB (powers of 1024))",
        ),
        (
            "slimimage",
            "[images.app]\nexec_form = true\n",
            "{path} [images.app]: context is required (the build context folder, relative to the rootdir),"
            " or image for an image already built",
        ),
        (
            "slimimage",
            '[images.app]\ncontext = "app"\nmax_size =\nexec_form = true\n',
            "{path}: not valid TOML: Invalid value (at line 3, column 11)",
        ),
    ],
    ids=["unknown-key", "bad-value", "missing-context", "toml-syntax"],
)
def test_a_bad_table_is_a_collection_error_naming_file_image_and_key(
    pytester: pytest.Pytester, name: str, text: str, message: str
) -> None:
    path = pytester.makefile(".toml", **{name: text})
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    result = pytester.runpytest("-rA")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    lines = block(result, f"ERROR collecting {path.name}")
    assert [line for line in lines if line.strip()] == [message.format(path=path)]
    result.stdout.fnmatch_lines([f"ERROR {path.name}", "*Interrupted: 1 error during collection*"])

    result = pytester.runpytest("-rA", "--continue-on-collection-errors")  # the other tests still run
    assert ("PASSED", "test_other.py::test_other") in outcomes(result)
    result.assert_outcomes(passed=1, errors=1)


def test_without_an_engine_each_item_skips_with_the_reason(pytester: pytest.Pytester, no_engine: str) -> None:
    images_only(pytester)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=9)
    skips = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert [line.split(": slimimage: ")[0] for line in skips] == [
        "SKIPPED [6] pyproject.toml:5",  # located at each image's table
        "SKIPPED [3] pyproject.toml:14",
    ]
    assert all(line.endswith("(--slimimage-require-engine makes this an error)") for line in skips)

    result = pytester.runpytest("-rA", "--slimimage-require-engine")
    result.assert_outcomes(failed=9)
    message = plain_error(block(result, "shell::runs"), "pyproject.toml", "EngineUnavailable")
    assert message.endswith("(required by slimimage_require_engine)")


# ------------------------------------------------------------------------------------- on the engine
def test_a_repository_with_only_the_table_gets_its_verdicts(
    pytester: pytest.Pytester, docker_engine: docker.DockerClient
) -> None:
    images_only(pytester)
    # (the rewrite warning only appears when the outer run is --assert=plain: the in-process inner run
    # finds the plugin already imported)
    result = pytester.runpytest("-rA", "--junitxml", "junit.xml", "-W", "ignore::pytest.PytestAssertRewriteWarning")

    assert outcomes(result) == {
        *(("PASSED", node) for node in HELLO_IDS),
        ("FAILED", "pyproject.toml::shell::max_size"),
        ("FAILED", "pyproject.toml::shell::exec_form"),
        ("PASSED", "pyproject.toml::shell::runs"),  # CMD echo ... still prints the word through /bin/sh
    }
    result.assert_outcomes(passed=7, failed=2, warnings=1)

    # the failure text is the marker's, located at the image's table (line 14)
    base = int(docker_engine.images.get("busybox:latest").attrs["Size"])  # shell adds no bytes to it
    max_size = plain_error(block(result, "shell::max_size"), "pyproject.toml", "DeclaredCheckFailed").splitlines()
    assert max_size[0] == (
        f"shell: max_size: {format_size(base)} ({base} bytes) exceeds the budget of 1kB by +{format_size(base - 1000)}"
    )
    assert max_size[1] == "  largest layers:"
    assert max_size[-1].startswith("  hint: the base image busybox:latest is already over the budget")
    exec_form = plain_error(block(result, "shell::exec_form"), "pyproject.toml", "DeclaredCheckFailed").splitlines()
    assert exec_form[0] == "shell: exec_form: CMD is shell form, so Docker runs it through /bin/sh -c"
    assert exec_form[1] == f"  shell/Dockerfile, line 2: CMD echo {SUITE_WORD}"
    assert exec_form[-1] == (
        f'  hint: use exec form (a JSON array of double-quoted strings): CMD ["echo", "{SUITE_WORD}"]'
    )
    assert result.outlines.count("pyproject.toml:14: DeclaredCheckFailed") == 2

    # warn_size: a warning located at hello's table, never a failure
    hello = base + 10_000
    result.stdout.fnmatch_lines(
        [
            "pyproject.toml::hello::warn_size",
            f"  */pyproject.toml:5: SlimImageWarning: hello: {format_size(hello)} is over its soft budget of 1kB"
            f" by +{format_size(hello - 1000)} (warn_size; not a failure)",
            "    [[]tool.slimimage.images.hello[]]",
        ]
    )

    (first, *_rest) = cache_masked(result)
    assert first == (
        "slimimage: 2 image(s) built or reused, 9 check(s) (2 failed); 2 image tag(s) cached, <n> older pruned,"
        " 0 leftover container(s) removed"
    )

    # JUnit XML: the image's facts as properties of each declarative item
    root = ET.parse(pytester.path / "junit.xml").getroot()
    cases = {f"{case.get('classname')}::{case.get('name')}": case for case in root.iter("testcase")}
    assert sorted(cases) == sorted(
        node.replace("pyproject.toml::", "pyproject.toml.", 1) for node in [*HELLO_IDS, *SHELL_IDS]
    )
    for key, case in cases.items():
        image = key.split(".", 2)[2].split("::")[0]
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        facts = ("id", "size", "platform", "final_base", "dockerfile")
        assert set(props) == {f"slimimage.{image}.{fact}" for fact in facts}, key
        assert str(props[f"slimimage.{image}.platform"]).startswith("linux/")
        assert props[f"slimimage.{image}.size"] == str(hello if image == "hello" else base)
        assert props[f"slimimage.{image}.final_base"] == "busybox:latest"
        assert props[f"slimimage.{image}.dockerfile"] == f"{image}/Dockerfile"


@pytest.mark.usefixtures("docker_engine")
def test_declared_images_share_a_build_with_fixtures(pytester: pytest.Pytester) -> None:
    """The same Dockerfile declared in pyproject.toml and used by an image fixture: one build."""
    images_only(pytester)
    pytester.makepyfile(
        test_fixture=f"""
        import pytest
        from pytest_slimimage import image_fixture

        hello = image_fixture("hello")

        @pytest.mark.slimimage(runs="{SUITE_WORD}")
        def test_hello(hello):
            pass
        """
    )
    result = pytester.runpytest("-k", "hello", "-W", "ignore::pytest.PytestAssertRewriteWarning")
    result.assert_outcomes(passed=7, warnings=1)  # the SlimImageWarning of warn_size, and nothing else
    assert cache_masked(result)[0].startswith("slimimage: 1 image(s) built or reused, 7 check(s) (0 failed)")


STAGES_DOCKERFILE = """\
FROM busybox:latest AS build
ARG WORD=unset
RUN echo "$WORD" > /word
CMD ["cat", "/word"]

FROM scratch
COPY --from=build /word /word
"""


@pytest.mark.usefixtures("docker_engine")
def test_dockerfile_target_and_build_args_reach_the_build(pytester: pytest.Pytester) -> None:
    """Only the ``build`` stage with WORD passed can print the word (the last stage is scratch)."""
    pytester.makefile(
        ".toml",
        slimimage=f"""\
        [images.staged]
        context = "staged"
        dockerfile = "Dockerfile.stages"
        target = "build"
        build_args = {{ WORD = "{SUITE_WORD}" }}
        final_base = "busybox"
        runs = "{SUITE_WORD}"
        """,
    )
    context = pytester.mkdir("staged")
    (context / "Dockerfile.stages").write_text(STAGES_DOCKERFILE)
    result = pytester.runpytest("-rA")
    assert outcomes(result) == {
        ("PASSED", "slimimage.toml::staged::final_base"),
        ("PASSED", "slimimage.toml::staged::runs"),
    }
