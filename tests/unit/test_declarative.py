"""The declarative form read from TOML: pyproject.toml and slimimage.toml, defaults, and errors
that name the file, the image table and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_slimimage.baseline import Growth
from pytest_slimimage.checks.declarative import Declarations, ImageDecl, load_declarations
from pytest_slimimage.checks.runs import RunExpectation
from pytest_slimimage.checks.spec import SpecError

FULL = """\
[tool.pytest.ini_options]
addopts = "-q"

[tool.slimimage]
max_growth = "5%"                 # default for every image below

[tool.slimimage.images.hello]
context = "example_project"
dockerfile = "Dockerfile.static"
target = "final"
build_args = { VERSION = "1.2", JOBS = 4 }
max_size = "1MB"
warn_size = "800kB"
final_base = "scratch"
exec_form = true
no_compilers = true
runs = { stdout = "hello world" }

[tool.slimimage.images.tiny]
context = "tiny"
max_size = 4096
max_growth = "2MB"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, name: str, text: str) -> Declarations:
    found = load_declarations(write(tmp_path, name, text))
    assert found is not None
    return found


def error(tmp_path: Path, name: str, text: str) -> str:
    path = write(tmp_path, name, text)
    with pytest.raises(SpecError) as excinfo:
        load_declarations(path)
    return str(excinfo.value).replace(str(path), name)


def test_pyproject_images_with_build_keys_and_every_check(tmp_path: Path) -> None:
    found = load(tmp_path, "pyproject.toml", FULL)
    assert found.path == tmp_path / "pyproject.toml"
    hello, tiny = found.images
    assert hello == ImageDecl(
        name="hello",
        context="example_project",
        spec=hello.spec,
        dockerfile="Dockerfile.static",
        target="final",
        build_args={"VERSION": "1.2", "JOBS": "4"},
        line=7,
    )
    assert hello.spec.checks == (
        "max_size",
        "warn_size",
        "max_growth",
        "final_base",
        "exec_form",
        "no_compilers",
        "runs",
    )
    assert (hello.spec.max_size, hello.spec.warn_size) == (1_000_000, 800_000)
    assert hello.spec.final_base == ("scratch",)
    assert hello.spec.no_compilers == ()
    assert hello.spec.runs == RunExpectation(stdout="hello world")
    assert hello.spec.max_growth == Growth("5%", percent=5.0)  # the global default

    assert (tiny.name, tiny.context, tiny.dockerfile, tiny.target, dict(tiny.build_args)) == (
        "tiny",
        "tiny",
        "Dockerfile",
        None,
        {},
    )
    assert tiny.spec.checks == ("max_size", "max_growth")
    assert tiny.spec.max_growth == Growth("2MB", size=2_000_000)  # its own wins over the default
    assert tiny.line == 19


def test_the_run_timeout_default_comes_from_the_caller(tmp_path: Path) -> None:
    text = '[tool.slimimage.images.a]\ncontext = "a"\nruns = true\n'
    found = load_declarations(write(tmp_path, "pyproject.toml", text), default_run_timeout=7.5)
    assert found is not None
    assert found.images[0].spec.runs == RunExpectation(timeout=7.5)


def test_a_pyproject_without_the_table_declares_nothing(tmp_path: Path) -> None:
    assert load_declarations(write(tmp_path, "pyproject.toml", '[tool.other]\nslimimage = "no"\n')) is None
    assert load_declarations(write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n')) is None


def test_a_table_without_images_declares_none(tmp_path: Path) -> None:
    assert load(tmp_path, "pyproject.toml", '[tool.slimimage]\nmax_growth = "5%"\n').images == ()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[images.app]\ncontext = "app"\nexec_form = true\n', 1),
        ('# budgets\n\n[tool.slimimage.images.app]\ncontext = "app"\nexec_form = true\n', 3),
    ],
    ids=["bare", "prefixed"],
)
def test_slimimage_toml_with_and_without_the_prefix(tmp_path: Path, text: str, line: int) -> None:
    (app,) = load(tmp_path, "slimimage.toml", text).images
    assert (app.name, app.context, app.spec.checks, app.line) == ("app", "app", ("exec_form",), line)


def test_slimimage_toml_global_default_without_the_prefix(tmp_path: Path) -> None:
    text = 'max_growth = "1%"\n\n[images.app]\ncontext = "app"\nmax_size = "1MB"\n'
    (app,) = load(tmp_path, "slimimage.toml", text).images
    assert app.spec.checks == ("max_size", "max_growth")
    assert app.spec.max_growth == Growth("1%", percent=1.0)


def test_another_toml_name_is_not_read_without_the_prefix(tmp_path: Path) -> None:
    assert load_declarations(write(tmp_path, "other.toml", '[images.app]\ncontext = "a"\n')) is None


# ------------------------------------------------------------------------------------------ errors
def test_unknown_image_key_with_did_you_mean(tmp_path: Path) -> None:
    text = '[tool.slimimage.images.hello]\ncontext = "hello"\nmax_sise = "10MB"\n'
    assert error(tmp_path, "pyproject.toml", text) == (
        "pyproject.toml [tool.slimimage.images.hello]: unknown keyword 'max_sise' (did you mean 'max_size'?);"
        " known keywords: max_size, warn_size, max_growth, final_base, exec_form, no_compilers, no_shell,"
        " no_package_manager, non_root, no_setuid, no_secrets, lint, runnable, max_waste, max_pull_size,"
        " reproducible, runs, serves, healthy, context, image, archive, dockerfile, target, build_args, builder,"
        " secrets, platform, platforms, no_cache"
    )


def test_unknown_build_key_suggests_the_build_key(tmp_path: Path) -> None:
    text = '[images.app]\ncontext = "app"\nbuild_arg = { A = "1" }\nexec_form = true\n'
    message = error(tmp_path, "slimimage.toml", text)
    assert message.startswith(
        "slimimage.toml [images.app]: unknown keyword 'build_arg' (did you mean 'build_args'?); known keywords: "
    )


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "pyproject.toml",
            '[tool.slimimage]\nmax_grwoth = "5%"\n',
            "pyproject.toml [tool.slimimage]: unknown key 'max_grwoth' (did you mean 'max_growth'?);"
            " known keys: images, max_growth",
        ),
        (
            "pyproject.toml",
            '[tool.slimimage]\nmax_size = "5MB"\n',
            "pyproject.toml [tool.slimimage]: unknown key 'max_size'; known keys: images, max_growth",
        ),
        (
            "slimimage.toml",
            "imagse = 3\n",
            "slimimage.toml: unknown key 'imagse' (did you mean 'images'?); known keys: images, max_growth",
        ),
        (
            "slimimage.toml",
            "[tool.slimimage]\nextra = 1\n",
            "slimimage.toml [tool.slimimage]: unknown key 'extra'; known keys: images, max_growth",
        ),
    ],
)
def test_unknown_global_key(tmp_path: Path, name: str, text: str, expected: str) -> None:
    assert error(tmp_path, name, text) == expected


def test_a_bad_global_default_is_reported_once_where_it_is_written(tmp_path: Path) -> None:
    text = '[tool.slimimage]\nmax_growth = "lots"\n\n[tool.slimimage.images.a]\ncontext = "a"\nexec_form = true\n'
    assert error(tmp_path, "pyproject.toml", text) == (
        "pyproject.toml [tool.slimimage]: max_growth: not an allowed growth: 'lots'"
        " (a percentage like '5%' or a size like '2MB')"
    )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('max_size = "lots"', "max_size: not a size: 'lots' (units: "),
        ("max_size = -3", "max_size: not a size: -3 (a size cannot be negative)"),
        ('warn_size = "1 parsec"', "warn_size: not a size: '1 parsec' (units: "),
        (
            'max_growth = "-5%"',
            "max_growth: not an allowed growth: '-5%' (a percentage like '5%' or a size like '2MB')",
        ),
        ('exec_form = "yes"', "exec_form expects True or False, got 'yes'"),
        ("final_base = 3", "final_base expects an image name or a list of names, got 3"),
        ("final_base = []", "final_base expects an image name or a list of names, got []"),
        ("no_compilers = 1", "no_compilers expects True, False, a list of allowed names/globs, or"),
        ("runs = 5", "runs expects True, an expected stdout (str or re.Pattern), or a dict of"),
        ("runs = { stdot = 'x' }", "runs: unknown key(s) 'stdot'; expected stdout, stderr,"),
        ("runs = { stdout_regex = '(' }", "runs: stdout_regex is not a valid regex (missing ), unterminated"),
        ("runs = { timeout = 0 }", "runs: timeout expects a positive number of seconds, got 0"),
        ('dockerfile = ""\nexec_form = true', "dockerfile expects a path, got ''"),
        ("target = 3\nexec_form = true", "target expects a stage name, got 3"),
        ('build_args = "A=1"\nexec_form = true', "build_args expects a table of strings, got 'A=1'"),
        ("build_args = { A = [1] }\nexec_form = true", "build_args expects a table of strings, got {'A': [1]}"),
        ("exec_form = false", "declares no check (give max_size, final_base, exec_form, no_compilers, runs, ...)"),
        ('builder = "kaniko"\nexec_form = true', "builder: expected auto, buildkit or legacy, got 'kaniko'"),
        ('platform = "amd64"\nexec_form = true', "platform: expected a platform os/arch[/variant] such as"),
        ('secrets = "tok"\nexec_form = true', "secrets: expected a mapping of secret id to file path, got 'tok'"),
        ("secrets = { tok = 1 }\nexec_form = true", "secrets: secret 'tok': expected a file path, got 1"),
        ('no_cache = "yes"\nexec_form = true', "no_cache expects true or false, got 'yes'"),
    ],
)
def test_bad_values_name_the_file_the_image_and_the_key(tmp_path: Path, keys: str, message: str) -> None:
    text = f'[tool.slimimage.images.hello]\ncontext = "hello"\n{keys}\n'
    assert error(tmp_path, "pyproject.toml", text).startswith(
        f"pyproject.toml [tool.slimimage.images.hello]: {message}"
    )


def test_builder_secrets_platform_and_no_cache(tmp_path: Path) -> None:
    text = (
        "[images.app]\ncontext = 'app'\nbuilder = 'BuildKit'\nsecrets = { npmrc = 'secrets/npmrc' }\n"
        "platform = 'linux/arm64'\nno_cache = true\nexec_form = true\n"
    )
    (decl,) = load(tmp_path, "slimimage.toml", text).images
    assert (decl.builder, dict(decl.secrets), decl.platform, decl.no_cache) == (
        "buildkit",
        {"npmrc": "secrets/npmrc"},
        "linux/arm64",
        True,
    )
    (plain,) = load(tmp_path, "slimimage.toml", "[images.app]\ncontext = 'app'\nexec_form = true\n").images
    assert (plain.builder, dict(plain.secrets), plain.platform, plain.no_cache) == (None, {}, None, False)


def test_build_inputs_are_not_for_an_existing_image(tmp_path: Path) -> None:
    text = "[images.app]\nimage = 'app:1'\nbuilder = 'legacy'\nno_cache = true\nexec_form = true\n"
    assert error(tmp_path, "slimimage.toml", text) == (
        "slimimage.toml [images.app]: builder, no_cache apply to a build (context), not to an existing image"
    )


@pytest.mark.parametrize("context", ["", "context = ''", "context = 3"])
def test_context_is_required(tmp_path: Path, context: str) -> None:
    text = f"[images.app]\n{context}\nexec_form = true\n"
    assert error(tmp_path, "slimimage.toml", text) == (
        "slimimage.toml [images.app]: context is required (the build context folder, relative to the rootdir),"
        " or image for an image already built"
    )


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("pyproject.toml", "[tool]\nslimimage = 3\n", "pyproject.toml: [tool.slimimage] must be a table"),
        (
            "pyproject.toml",
            "[tool.slimimage]\nimages = 3\n",
            "pyproject.toml [tool.slimimage]: images must be a table of tables ([tool.slimimage.images.<name>])",
        ),
        ("slimimage.toml", "[images]\napp = 3\n", "slimimage.toml [images.app]: must be a table of keys"),
    ],
)
def test_misshapen_tables(tmp_path: Path, name: str, text: str, expected: str) -> None:
    assert error(tmp_path, name, text) == expected


def test_toml_syntax_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    text = '[tool.slimimage.images.app]\ncontext = "app"\nmax_size = \n'
    assert error(tmp_path, "pyproject.toml", text) == (
        "pyproject.toml: not valid TOML: Invalid value (at line 3, column 12)"
    )


# ------------------------------------------------------------------------------------ header lines
@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("[tool.slimimage.images.hello]", "hello"),
        ("[tool.slimimage.images.hello]   # the app", "hello"),
        ("  [ tool.slimimage . images . hello ]  ", "hello"),
        ('[tool.slimimage.images."my app"]', "my app"),
        ('[tool.slimimage.images."v1.2"]', "v1.2"),
        ("[tool.slimimage.images.'raw']", "raw"),
    ],
)
def test_header_line_of_each_image(tmp_path: Path, header: str, name: str) -> None:
    text = (
        f'[project]\nname = "x"\n\n[tool.slimimage]\nmax_growth = "5%"\n\n{header}\ncontext = "c"\nexec_form = true\n'
    )
    (decl,) = load(tmp_path, "pyproject.toml", text).images
    assert (decl.name, decl.line) == (name, 7)


def test_header_line_of_an_inline_table_is_its_parent_table(tmp_path: Path) -> None:
    text = (
        '[project]\nname = "x"\n\n[tool.slimimage-other]\nx = 1\n\n[tool.slimimage.images]\n'
        'a = { context = "a", exec_form = true }\n'
    )
    (decl,) = load(tmp_path, "pyproject.toml", text).images
    assert decl.line == 7


def test_header_line_does_not_match_a_longer_name(tmp_path: Path) -> None:
    text = (
        '[tool.slimimage.images.hello2]\ncontext = "b"\nexec_form = true\n\n'
        '[tool.slimimage.images.hello]\ncontext = "a"\nexec_form = true\n'
    )
    lines = {d.name: d.line for d in load(tmp_path, "pyproject.toml", text).images}
    assert lines == {"hello2": 1, "hello": 5}


def test_the_error_names_the_absolute_file(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool.slimimage]\nbogus = 1\n")
    with pytest.raises(SpecError, match=rf"^{re.escape(str(path))} \[tool\.slimimage\]: unknown key 'bogus'"):
        load_declarations(path)
