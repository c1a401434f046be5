"""What the end of a session says (no engine): what the reaper removed, what a signal stopped,
an engine that is gone; and the will a lost legacy build leaves for a later session's reaper."""

from __future__ import annotations

from pathlib import Path

from pytest_slimimage.dockerfile.model import parse_dockerfile
from pytest_slimimage.engine.leftovers import LostBuild, has_will, read_will, write_will
from pytest_slimimage.glue.summary import Summary
from pytest_slimimage.labels import LABEL_SESSION

FIRST = (
    "slimimage: 0 image build(s), 0 reused, 0 check(s) (0 failed); 0 image tag(s) cached, 0 older pruned,"
    " 0 leftover container(s) removed"
)


def test_what_the_reaper_removed_is_one_line() -> None:
    summary = Summary(used=True, reaped_containers=["slimimage-a-x-1", "slimimage-b-y-2"])
    assert summary.lines(keep_images=False) == [FIRST, "slimimage: removed 2 containers left by ended sessions"]
    worker = Summary(
        used=True,
        reaped_containers=["slimimage-a-x-1"],  # seen by two workers, removed by one
        reaped_folders=["/tmp/pytest-slimimage-a"],
        reaped_images=["pytest-slimimage-archive/app:a-0123456789ab"],
        reaped_tags=["pytest-slimimage/app:1", "pytest-slimimage/app:2"],
    )
    summary.merge(worker.to_json())
    assert summary.lines(keep_images=False)[1] == (
        "slimimage: removed 2 containers, 1 temporary folder, 1 loaded or rebuilt image and 2 build-cache tags"
        " beyond the bound left by ended sessions"
    )


def test_a_signal_says_what_it_stopped_and_the_exit_status() -> None:
    summary = Summary(used=True)
    worker = Summary(
        used=True,
        signal="SIGTERM",
        exit_status=143,
        stopped=[
            "removed the running container slimimage-t-app-1",
            "stopped the build of slow (slow/Dockerfile)",
            "removed the loaded archive image pytest-slimimage-archive/app:t-0123456789ab",
        ],
    )
    summary.merge(worker.to_json())
    summary.merge(Summary(stopped=["removed the temporary folder /tmp/pytest-slimimage-t"]).to_json())
    assert summary.lines(keep_images=False)[1:] == [
        "slimimage: stopped by SIGTERM (exit status 143): stopped the build of slow (slow/Dockerfile);"
        " removed the running container slimimage-t-app-1, the loaded archive image"
        " pytest-slimimage-archive/app:t-0123456789ab and the temporary folder /tmp/pytest-slimimage-t"
    ]
    assert Summary(used=True, signal="SIGHUP", exit_status=129).lines(keep_images=False)[1] == (
        "slimimage: stopped by SIGHUP (exit status 129): nothing to remove"
    )


def test_an_engine_that_is_gone_is_said_once() -> None:
    lost = "the Docker engine at unix:///x.sock is gone (it went away while building a (Dockerfile)): ..."
    summary = Summary(used=True, lost=[lost])
    summary.merge(Summary(used=True, lost=[lost]).to_json())
    assert summary.lines(keep_images=False)[1:] == [f"slimimage: {lost}"]


def test_a_lost_legacy_build_names_its_step_containers(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM busybox:latest AS build\nRUN echo  built > /x\n"
        "FROM busybox:latest AS unused\nRUN sleep 9\n"
        'FROM busybox:latest\nCOPY --from=build /x /x\nRUN  sleep 60 \\\n  && true\nRUN ["/bin/echo", "hi"]\n'
    )
    build = LostBuild.of("unix:///x.sock", parse_dockerfile(dockerfile), started=1000.0)
    assert build.commands == ("echo built > /x", "sleep 9", "sleep 60 && true", '["/bin/echo", "hi"]')
    step = {"State": {"Running": False}, "Config": {"Cmd": ["/bin/sh", "-c", "sleep 60   && true"], "Labels": {}}}
    assert build.made(step, created=1001.0)
    assert build.made({"State": {}, "Config": {"Cmd": ["/bin/echo", "hi"]}}, created=1001.0)
    assert not build.made(step, created=500.0)  # made before the build ran
    assert not build.made({**step, "State": {"Running": True}}, created=1001.0)  # running: not a lost step
    labelled = {"State": {}, "Config": {"Cmd": ["/bin/sh", "-c", "sleep 60 && true"], "Labels": {LABEL_SESSION: "t"}}}
    assert not build.made(labelled, created=1001.0)  # a run's container: the label says whose
    assert not build.made({"State": {}, "Config": {"Cmd": ["/bin/sh", "-c", "sleep 10"]}}, created=1001.0)

    folder = tmp_path / "pytest-slimimage-t"
    folder.mkdir()
    assert not has_will(folder) and read_will(folder) == []
    write_will(folder, "t-gw0", [build])
    write_will(folder, "t-gw1", [build])
    assert has_will(folder)
    assert read_will(folder) == [build, build]
