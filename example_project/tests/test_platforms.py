"""The static hello for two platforms, each held to its own budget.

``platforms=`` builds the image once per platform with BuildKit (Dockerfile.cross cross-compiles
on the build machine), and every test that uses the fixture runs once per platform:
``test_hello_everywhere[linux/arm64]`` checks the image named ``hello_cross[linux/arm64]``. The
arm64 image runs under QEMU emulation on an amd64 machine (scripts/emulation.sh sets it up), and
the results say so.
"""

import pytest

import pytest_slimimage as si

hello_cross = si.image_fixture(".", dockerfile="Dockerfile.cross", platforms=["linux/amd64", "linux/arm64"])


@pytest.mark.slimimage(
    max_size={"linux/amd64": "1MB", "linux/arm64": "800kB"},  # the arm64 binary is smaller (~700 kB)
    final_base="scratch",
    exec_form=True,
    no_compilers=True,
    runnable=True,
    runs="hello world",
)
def test_hello_everywhere(hello_cross):
    pass


def test_each_platform_is_what_it_says(hello_cross):
    platform = hello_cross.name.partition("[")[2].rstrip("]")
    assert hello_cross.platform == platform
    result = si.assert_runs(hello_cross, "hello world")
    if platform.endswith("/arm64") and hello_cross.engine_arch == "amd64":
        assert result.emulation.startswith("linux/arm64 under QEMU")
