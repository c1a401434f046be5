"""The plugin's surface without an engine: entry point, option group, marker registration,
``-p no:slimimage``, and bad option/ini values rejected at parse time with their exact words."""

from __future__ import annotations

import pytest

import pytest_slimimage.plugin
from pytest_slimimage.glue.options import OPTIONS as OPTION_TABLE
from pytest_slimimage.glue.settings import Settings
from pytest_slimimage.glue.state import SESSION_KEY

OPTIONS = (
    "--slimimage-require-engine",
    "--slimimage-keep-images",
    "--slimimage-run-timeout=SECONDS",
    "--slimimage-build-timeout=SECONDS",
    "--slimimage-builder=BUILDER",
    "--slimimage-buildx-builder=NAME",
    "--slimimage-baseline=PATH",
    "--slimimage-update-baseline",
    "--slimimage-report=PATH",
    "--slimimage-markdown=PATH",
    "--slimimage-chart=PATH",
)
INI_KEYS = (
    "slimimage_require_engine",
    "slimimage_keep_images",
    "slimimage_run_timeout",
    "slimimage_build_timeout",
    "slimimage_builder",
    "slimimage_buildx_builder",
    "slimimage_baseline",
    "slimimage_report",
    "slimimage_markdown",
    "slimimage_chart",
)
GROUP = "container image checks (pytest-slimimage):"


def test_loaded_through_its_entry_point(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfigure()
    assert config.pluginmanager.get_plugin("slimimage") is pytest_slimimage.plugin
    assert SESSION_KEY in config.stash

    blocked = pytester.parseconfigure("-p", "no:slimimage")
    assert blocked.pluginmanager.get_plugin("slimimage") is None
    assert SESSION_KEY not in blocked.stash


def test_help_shows_the_option_group(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one line per option and ini key: no help text is wrapped
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    lines = result.outlines
    start = lines.index(GROUP)
    group = lines[start + 1 : lines.index("", start)]
    options = [line.split()[0] for line in group if line.startswith("  --")]
    assert options == list(OPTIONS)
    result.stdout.fnmatch_lines([f"  {key} (string):*" for key in INI_KEYS], consecutive=False)

    # Every row of the option table, its help (default included) on its option and on its ini key.
    assert options == [f"{row.flag}={row.metavar}" if row.metavar else row.flag for row in OPTION_TABLE]
    assert [row.ini for row in OPTION_TABLE if row.ini] == list(INI_KEYS)
    words = " ".join(result.stdout.str().split())  # a long name puts its help on the next line
    for row, option in zip(OPTION_TABLE, options, strict=True):
        assert f" {option} {row.help_text()} " in words, row.flag
        if row.ini:
            assert f" {row.ini} (string): {row.help_text()} " in words, row.ini
    assert "(default: 30)." in "\n".join(group)


def test_no_slimimage_removes_options_marker_and_fixtures(pytester: pytest.Pytester) -> None:
    help_text = pytester.runpytest("-p", "no:slimimage", "--help").stdout.str()
    assert GROUP not in help_text
    assert "--slimimage-" not in help_text
    assert "slimimage_" not in help_text

    pytester.makepyfile(
        test_marker="""
            import pytest

            @pytest.mark.slimimage(max_size="1MB")
            def test_marked():
                pass
        """,
        test_fixture="""
            def test_builds(slimimage_build):
                pass
        """,
    )
    # In a subprocess: pytest caches registered marker names in the process-wide ``pytest.mark``,
    # so an in-process run would still know ``slimimage`` from the outer session.
    result = pytester.runpytest_subprocess(
        "-p", "no:slimimage", "--strict-markers", "--continue-on-collection-errors", "-rA"
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*'slimimage' not found in `markers` configuration option*",
            "*fixture 'slimimage_build' not found*",
        ],
        consecutive=False,
    )


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.slimimage(max_size="1MB")
        def test_marked():
            pass
        """
    )
    collected = pytester.runpytest_subprocess("--strict-markers", "--collect-only", "-q")  # see above: not in-process
    assert collected.ret == pytest.ExitCode.OK
    collected.stdout.fnmatch_lines(["test_marker_is_registered.py::test_marked", "1 test collected*"])

    markers = pytester.runpytest("--markers")
    assert markers.ret == pytest.ExitCode.OK
    markers.stdout.fnmatch_lines(
        [
            "@pytest.mark.slimimage(max_size=..., warn_size=..., max_growth=..., final_base=..., exec_form=...,"
            " no_compilers=..., no_shell=..., no_package_manager=..., non_root=..., no_setuid=..., no_secrets=...,"
            " lint=..., runnable=..., max_waste=..., max_pull_size=..., reproducible=..., runs=..., serves=...,"
            " healthy=..., image=None):"
            " check the image fixture the test uses (pytest-slimimage)"
        ]
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--slimimage-run-timeout", "abc", "expected a number of seconds, got 'abc'"),
        ("--slimimage-run-timeout", "0", "expected a positive number of seconds, got '0'"),
        ("--slimimage-run-timeout", "-1", "expected a positive number of seconds, got '-1'"),
        ("--slimimage-run-timeout", "nan", "expected a number of seconds, got 'nan'"),
        ("--slimimage-run-timeout", "inf", "expected a number of seconds, got 'inf'"),
        ("--slimimage-build-timeout", "soon", "expected a number of seconds, got 'soon'"),
        ("--slimimage-build-timeout", "0", "expected a positive number of seconds, got '0'"),
        ("--slimimage-builder", "fast", "expected auto, buildkit or legacy, got 'fast'"),
        ("--slimimage-buildx-builder", " ", "expected a name, got ' '"),
    ],
)
def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester, option: str, value: str, message: str) -> None:
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest(f"{option}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*: error: argument {option}: {message}"])
    assert "ran" not in result.stdout.str()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("slimimage_run_timeout", "abc", "slimimage_run_timeout: expected a number of seconds, got 'abc'"),
        ("slimimage_run_timeout", "0", "slimimage_run_timeout: expected a positive number of seconds, got '0'"),
        ("slimimage_build_timeout", "-5", "slimimage_build_timeout: expected a positive number of seconds, got '-5'"),
        ("slimimage_require_engine", "maybe", "slimimage_require_engine: expected true or false, got 'maybe'"),
        ("slimimage_keep_images", "2", "slimimage_keep_images: expected true or false, got '2'"),
        ("slimimage_builder", "kaniko", "slimimage_builder: expected auto, buildkit or legacy, got 'kaniko'"),
    ],
)
def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester, key: str, value: str, message: str) -> None:
    pytester.makeini(f"[pytest]\n{key} = {value}\n")
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()


def test_bad_pyproject_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nslimimage_run_timeout = "soon"\n')
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: slimimage_run_timeout: expected a number of seconds, got 'soon'"])


def test_update_baseline_without_a_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--slimimage-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --slimimage-update-baseline needs a baseline file: --slimimage-baseline PATH or the ini key"
            " slimimage_baseline"
        ]
    )


def test_settings_option_over_ini_over_default(pytester: pytest.Pytester) -> None:
    defaults = pytester.parseconfigure().stash[SESSION_KEY].settings
    assert (defaults.require_engine, defaults.keep_images, defaults.run_timeout, defaults.build_timeout) == (
        False,
        False,
        30.0,
        None,
    )

    pytester.makeini(
        "[pytest]\n"
        "slimimage_require_engine = yes\n"
        "slimimage_keep_images = on\n"
        "slimimage_run_timeout = 7\n"
        "slimimage_build_timeout = 120\n"
    )
    from_ini = pytester.parseconfigure().stash[SESSION_KEY].settings
    assert (from_ini.require_engine, from_ini.keep_images, from_ini.run_timeout, from_ini.build_timeout) == (
        True,
        True,
        7.0,
        120.0,
    )

    from_option = (
        pytester.parseconfigure("--slimimage-run-timeout=2.5", "--slimimage-build-timeout", "60")
        .stash[SESSION_KEY]
        .settings
    )
    assert (from_option.run_timeout, from_option.build_timeout) == (2.5, 60.0)


def test_builder_settings_option_over_ini_over_default(pytester: pytest.Pytester) -> None:
    defaults = pytester.parseconfigure().stash[SESSION_KEY].settings
    assert (defaults.builder, defaults.buildx_builder) == ("auto", None)
    pytester.makeini("[pytest]\nslimimage_builder = Legacy\nslimimage_buildx_builder = ci-builder\n")
    from_ini = pytester.parseconfigure().stash[SESSION_KEY].settings
    assert (from_ini.builder, from_ini.buildx_builder) == ("legacy", "ci-builder")
    config = pytester.parseconfigure("--slimimage-builder=buildkit", "--slimimage-buildx-builder", "remote")
    from_option = config.stash[SESSION_KEY].settings
    assert (from_option.builder, from_option.buildx_builder) == ("buildkit", "remote")


def test_nothing_set_is_the_tables_defaults(pytester: pytest.Pytester) -> None:
    settings = pytester.parseconfigure().stash[SESSION_KEY].settings
    assert settings == Settings()
    assert {row.name: getattr(settings, row.name) for row in OPTION_TABLE} == {
        row.name: row.default for row in OPTION_TABLE
    }


def test_paths_option_over_ini_and_relative_to_the_rootdir(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nslimimage_report = out/from-ini.json\nslimimage_baseline = sizes.json\n")
    root = pytester.path
    from_ini = pytester.parseconfigure().stash[SESSION_KEY].settings
    assert (from_ini.report, from_ini.baseline, from_ini.markdown) == (
        root / "out/from-ini.json",
        root / "sizes.json",
        None,
    )

    elsewhere = root / "elsewhere.json"
    from_option = (
        pytester.parseconfigure(
            f"--slimimage-report={elsewhere}", "--slimimage-keep-images", "--slimimage-update-baseline"
        )
        .stash[SESSION_KEY]
        .settings
    )
    assert (from_option.report, from_option.keep_images, from_option.update_baseline) == (elsewhere, True, True)


def test_no_summary_line_when_no_image_was_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "slimimage:" not in result.stdout.str()


@pytest.mark.parametrize("args", [["--help"], ["--markers"], ["--collect-only", "-q"], ["-q"]])
def test_a_session_that_builds_nothing_creates_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """No temporary folder (nor anything else) for a run that never builds an image."""
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.OK
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith("pytest-slimimage")) == []
