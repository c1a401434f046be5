"""The article's five images, each held to what the article claims about it.

Run from this folder with ``pytest``. Every variant gets the same five questions: size
budget, final base, exec-form CMD, no compilers, and "does it print hello world". The two
variants the article got wrong are shown caught: their failing checks are strict xfails
whose reason is the cause, so the run fails if the plugin ever stops catching them.
"""

import re

import pytest

import pytest_slimimage as si
from pytest_slimimage import ImageCheckFailed, assert_max_size, assert_runs, image_fixture

naive = image_fixture(".", dockerfile="Dockerfile.naive")
multistage = image_fixture(".", dockerfile="Dockerfile.multistage")
dynamic_scratch = image_fixture(".", dockerfile="Dockerfile.scratch")
static = image_fixture(".", dockerfile="Dockerfile.static")
busybox = image_fixture(".", dockerfile="Dockerfile.busybox")


# --- 1. FROM gcc: it works, and it ships a compiler in half a gigabyte ------------------------------
@pytest.mark.slimimage(max_size="600MB", final_base="gcc", exec_form=True, runs="hello world")
def test_naive_runs(naive):
    pass


@pytest.mark.xfail(raises=ImageCheckFailed, reason="FROM gcc ships the whole toolchain: ~460 MB")
@pytest.mark.slimimage(max_size="100MB")
def test_naive_fits_100mb(naive):
    pass


@pytest.mark.xfail(raises=ImageCheckFailed, reason="FROM gcc ships gcc, cc1, as and ld")
@pytest.mark.slimimage(no_compilers=True)
def test_naive_has_no_compilers(naive):
    pass


# --- 2. multi-stage into slim Debian: small enough, but CMD ['./hello'] is not JSON ------------------
@pytest.mark.slimimage(max_size="250MB", final_base="debian", no_compilers=True)
def test_multistage_is_slim_and_toolchain_free(multistage):
    pass


@pytest.mark.xfail(raises=ImageCheckFailed, reason="CMD ['./hello']: single quotes are not JSON -> /bin/sh -c")
@pytest.mark.slimimage(exec_form=True)
def test_multistage_exec_form(multistage):
    pass


@pytest.mark.xfail(raises=ImageCheckFailed, reason="/bin/sh: 1: [./hello]: not found (exit 127)")
@pytest.mark.slimimage(runs="hello world")
def test_multistage_runs(multistage):
    pass


# --- 3. FROM scratch with the dynamically linked binary: 16 kB that cannot start ---------------------
@pytest.mark.slimimage(max_size="100kB", final_base="scratch", exec_form=True, no_compilers=True)
def test_dynamic_scratch_is_tiny(dynamic_scratch):
    pass


@pytest.mark.xfail(raises=ImageCheckFailed, reason="dynamic binary in scratch: no ELF loader, no libc")
@pytest.mark.slimimage(runs="hello world")
def test_dynamic_scratch_runs(dynamic_scratch):
    pass


# --- 4. the fix: a static binary in scratch passes all five within 1 MB ------------------------------
@pytest.mark.slimimage(max_size="1MB", final_base="scratch", exec_form=True, no_compilers=True, runs="hello world")
def test_static_scratch(static):
    pass


# --- 5. the same static binary on busybox, for a shell to debug with ---------------------------------
@pytest.mark.slimimage(max_size="5MB", final_base="busybox", exec_form=True, no_compilers=True, runs="hello world")
def test_busybox(busybox):
    pass


# --- what the images expose: the fixed one no shell, no root, no secret; busybox its shell -----------
@pytest.mark.xfail(raises=ImageCheckFailed, reason="busybox is there for its shell: sh is an applet of /bin/busybox")
@pytest.mark.slimimage(no_shell=True)
def test_busybox_has_no_shell(busybox):
    pass


# --- the same checks as plain assertions, for tests that want the result -----------------------------
def test_helpers_return_what_they_saw(static, naive):
    result = assert_runs(static, re.compile(r"^hello world$"))
    assert result.exit_code == 0 and not result.timed_out
    assert_max_size(static, "1MB")
    assert naive.size > 50 * static.size  # the article's point, in one line


# --- our own check, registered in conftest.py: the fixed image is one layer, the naive one is not ---
@pytest.mark.slimimage(max_layers=1)
def test_static_is_one_layer(static):
    pass


@pytest.mark.xfail(raises=ImageCheckFailed, reason="FROM gcc brings Debian's and gcc's layers")
def test_naive_is_one_layer(naive):
    si.assert_max_layers(naive, 1)
