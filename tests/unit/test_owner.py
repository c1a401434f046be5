"""Owners of what the plugin leaves behind, and when the reaper may take it: a process of this host
and boot is alive or provably gone (a reused pid is not it); one it cannot see (another host or
boot) is judged by its lease, or without one by its age. No engine."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from pytest_slimimage.engine.reaper import gone
from pytest_slimimage.labels import LABEL_EXPIRES, LABEL_OWNER, LABEL_SESSION, LABEL_WORKER, MAX_AGE, container_labels
from pytest_slimimage.owner import Owner, claim_session_dir, read_dir_owner, session_dir

NOW = 1_800_000_000.0


def ended_process() -> Owner:
    """The owner of a process that ran on this host and has exited (reaped)."""
    proc = subprocess.Popen(["sleep", "30"])
    owner = Owner.of(proc.pid)
    proc.kill()
    proc.wait()
    return owner


def test_this_process_is_alive_and_round_trips_as_text() -> None:
    me = Owner.current()
    assert me.host == socket.gethostname() and me.pid == os.getpid()
    assert me.start  # boot id and start time, on Linux
    assert Owner.parse(str(me)) == me
    assert me.alive() is True


def test_an_ended_process_is_provably_gone() -> None:
    assert ended_process().alive() is False


def test_a_reused_pid_is_not_the_owner() -> None:
    me = Owner.current()
    boot, _, ticks = me.start.partition(".")
    impostor = Owner(me.host, me.pid, f"{boot}.{int(ticks) + 1}")  # this pid, started at another time
    assert impostor.alive() is False


def test_another_host_or_boot_cannot_be_told() -> None:
    me = Owner.current()
    assert Owner("elsewhere.example", me.pid, me.start).alive() is None
    assert Owner(me.host, me.pid, f"0123456789abcdef.{me.start.partition('.')[2]}").alive() is None


def test_text_that_is_not_an_owner() -> None:
    assert Owner.parse("") is None
    assert Owner.parse("host") is None
    assert Owner.parse("host:abc:1.2") is None
    assert Owner.parse("host:12") == Owner("host", 12, "")


def test_the_reaper_takes_only_what_is_provably_abandoned() -> None:
    dead, alive, foreign = ended_process(), Owner.current(), Owner("elsewhere.example", 1, "x.1")
    assert gone(dead, expires=NOW + 3600, made=NOW, now=NOW)  # gone: its lease does not matter
    assert not gone(alive, expires=NOW - 3600, made=NOW - 2 * MAX_AGE, now=NOW)  # alive: never
    assert gone(foreign, expires=NOW - 1, made=NOW, now=NOW)  # another host: the lease decides
    assert not gone(foreign, expires=NOW + 1, made=NOW - 2 * MAX_AGE, now=NOW)
    assert not gone(None, expires=None, made=NOW - MAX_AGE + 60, now=NOW)  # no owner: its age decides
    assert gone(None, expires=None, made=NOW - MAX_AGE - 60, now=NOW)
    assert not gone(None, expires=None, made=None, now=NOW)


def test_a_container_carries_its_owner_and_a_lease_past_its_run() -> None:
    labels = container_labels("tok", "tok-gw1", 30, now=NOW)
    assert labels[LABEL_SESSION] == "tok" and labels[LABEL_WORKER] == "tok-gw1"
    assert Owner.parse(labels[LABEL_OWNER]) == Owner.current()
    assert float(labels[LABEL_EXPIRES]) == NOW + 30 + 3600


def test_a_session_folder_names_its_owner(tmp_path: Path) -> None:
    folder = session_dir("abc", tmp_path)
    assert folder == tmp_path / "pytest-slimimage-abc"
    assert read_dir_owner(folder) is None
    claim_session_dir(folder, Owner("h", 1, "b.2"))
    claim_session_dir(folder, Owner("other", 2, ""))  # the first claim stays
    assert read_dir_owner(folder) == Owner("h", 1, "b.2")
    assert sorted(p.name for p in folder.iterdir()) == ["owner"]
