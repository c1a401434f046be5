"""Who a container runs as, and who owns a file: the image's ``USER`` resolved the way the engine
resolves it (runc's user lookup, in the image's own ``/etc/passwd`` and ``/etc/group``), and numeric
owners named through the same files.

The engine's rules: an empty ``USER`` is root; ``USER uid[:gid]`` with numbers needs no passwd entry
(without one the group is 0); a name must be in the image's ``/etc/passwd`` (and a group name in
``/etc/group``), or the container does not start: ``unable to find user NAME: no matching entries in
passwd file``.

Pure: reads the files the layer index keeps (:data:`~pytest_slimimage.analysis.layers.KEPT_CONTENT`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pytest_slimimage.facts import FileSystem

__all__ = ["GROUP", "PASSWD", "Account", "EffectiveUser", "effective_user", "owner", "parse_group", "parse_passwd"]

PASSWD = "/etc/passwd"
GROUP = "/etc/group"


@dataclass(frozen=True)
class Account:
    """One line of ``/etc/passwd``."""

    name: str
    uid: int
    gid: int
    line: int
    """1-based line number in the file."""


def parse_passwd(data: bytes) -> dict[str, Account]:
    """Accounts by name (the first line of a name wins, as the C library's lookup does); malformed
    lines are skipped."""
    out: dict[str, Account] = {}
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        fields = raw.split(":")
        if len(fields) < 4 or not fields[0] or raw.startswith(("#", "+", "-")):
            continue
        try:
            account = Account(fields[0], int(fields[2]), int(fields[3]), number)
        except ValueError:
            continue
        out.setdefault(account.name, account)
    return out


def parse_group(data: bytes) -> dict[str, int]:
    """Group ids by name (``/etc/group``)."""
    out: dict[str, int] = {}
    for raw in data.decode("utf-8", "replace").splitlines():
        fields = raw.split(":")
        if len(fields) < 3 or not fields[0] or raw.startswith(("#", "+", "-")):
            continue
        try:
            out.setdefault(fields[0], int(fields[2]))
        except ValueError:
            continue
    return out


def _passwd(fs: FileSystem | None) -> dict[str, Account] | None:
    data = fs.contents.get(PASSWD) if fs is not None else None
    return parse_passwd(data) if data is not None else None


def _groups(fs: FileSystem | None) -> dict[str, int] | None:
    data = fs.contents.get(GROUP) if fs is not None else None
    return parse_group(data) if data is not None else None


@dataclass(frozen=True)
class EffectiveUser:
    """The image's ``USER`` as the engine resolves it."""

    spec: str
    """``USER`` as the image config has it (``""``: unset)."""
    uid: int | None
    """None when the engine cannot resolve it (the container does not start)."""
    gid: int | None
    problem: str = ""
    """Why the engine refuses to start the container (a name missing from the image's files)."""
    how: str = ""
    """How it was resolved: ``numeric``, ``/etc/passwd line 3``, ``unset``."""

    @property
    def root(self) -> bool:
        return self.uid == 0


def effective_user(spec: str, fs: FileSystem | None) -> EffectiveUser:
    """``spec`` (``""``, ``0``, ``root``, ``1000:1000``, ``nobody:nogroup``) resolved in ``fs``'s
    ``/etc/passwd`` and ``/etc/group`` (``fs`` None: as if the image had neither file)."""
    text = spec.strip()
    if not text:
        return EffectiveUser(spec, 0, 0, how="unset: the engine's default, root")
    user, _, group = text.partition(":")
    accounts = _passwd(fs)
    uid: int | None
    gid: int | None
    if user.isdigit():
        uid = int(user)
        match = next((a for a in (accounts or {}).values() if a.uid == uid), None)
        gid = match.gid if match is not None else 0
        how = "numeric" + (f", /etc/passwd line {match.line} ({match.name})" if match is not None else "")
    else:
        if accounts is None:
            return EffectiveUser(
                spec, None, None, f"unable to find user {user}: the image has no {PASSWD}", how="by name"
            )
        account = accounts.get(user)
        if account is None:
            return EffectiveUser(
                spec, None, None, f"unable to find user {user}: no matching entries in {PASSWD}", how="by name"
            )
        uid, gid = account.uid, account.gid
        how = f"{PASSWD} line {account.line}"
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            groups = _groups(fs)
            if groups is None or group not in groups:
                where = f"the image has no {GROUP}" if groups is None else f"no matching entries in {GROUP}"
                return EffectiveUser(spec, uid, None, f"unable to find group {group}: {where}", how=how)
            gid = groups[group]
    return EffectiveUser(spec, uid, gid, how=how)


def owner(uid: int, gid: int, fs: FileSystem | None) -> str:
    """``root:root (0:0)``; ``1000:1000`` when the image names neither."""
    users: Mapping[int, str] = {}
    groups: Mapping[int, str] = {}
    accounts = _passwd(fs)
    if accounts:
        users = {a.uid: a.name for a in reversed(list(accounts.values()))}
    named = _groups(fs)
    if named:
        groups = {number: name for name, number in reversed(list(named.items()))}
    if uid not in users and gid not in groups:
        return f"{uid}:{gid}"
    return f"{users.get(uid, str(uid))}:{groups.get(gid, str(gid))} ({uid}:{gid})"
