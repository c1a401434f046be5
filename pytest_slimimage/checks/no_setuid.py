"""``no_setuid``: no setuid or setgid file in the final filesystem, each one found listed with its
mode, its owner and the layer that wrote it."""

from __future__ import annotations

import fnmatch
import posixpath
import stat
from collections.abc import Iterable, Sequence

from pytest_slimimage.analysis.users import owner
from pytest_slimimage.checks.allowlist import allow_parser
from pytest_slimimage.checks.check import FILESYSTEM, Check
from pytest_slimimage.checks.provenance import layer_namer
from pytest_slimimage.checks.result import CheckResult, passing
from pytest_slimimage.facts import FileEntry, ImageFacts

SETUID_BITS = stat.S_ISUID | stat.S_ISGID


def setuid_files(entries: Iterable[FileEntry], allow: Sequence[str] = ()) -> list[FileEntry]:
    """The regular files (and hard links) with the setuid or setgid bit, not matched by ``allow``
    (globs over the path or the basename). A setgid directory only passes its group on: not listed."""
    found = []
    for entry in entries:
        if entry.kind in ("file", "hardlink") and entry.mode & SETUID_BITS:
            names = (entry.path, posixpath.basename(entry.path))
            if not any(fnmatch.fnmatchcase(n, pattern) for pattern in allow for n in names):
                found.append(entry)
    return sorted(found, key=lambda e: e.path)


def check_no_setuid(facts: ImageFacts, allow: Sequence[str] = ()) -> CheckResult:
    """No file with the setuid or setgid bit in the final filesystem; ``allow`` lists glob patterns
    of paths or names kept on purpose."""
    if isinstance(allow, str):
        allow = (allow,)
    fs = facts.filesystem
    if fs is None:
        raise ValueError(f"no_setuid needs the filesystem of {facts.name}, which was not indexed")
    found = setuid_files(fs, allow)
    details = {
        "found": [{"path": e.path, "mode": f"{e.mode:04o}", "uid": e.uid, "gid": e.gid} for e in found],
        "allow": list(allow),
    }
    if not found:
        return passing("no_setuid", facts, f"no setuid or setgid file among {len(fs)} paths", **details)
    layer = layer_namer(facts)
    evidence: list[str] = []
    for entry in found:
        bits = " and ".join(b for b, flag in (("setuid", stat.S_ISUID), ("setgid", stat.S_ISGID)) if entry.mode & flag)
        mode = stat.filemode(stat.S_IFREG | entry.mode)
        evidence += [
            f"{mode} {entry.mode:04o} {owner(entry.uid, entry.gid, fs)}  {entry.path}  ({bits})",
            f"  written by {layer(entry.layer)}",
        ]
    return CheckResult(
        "no_setuid",
        facts.name,
        False,
        f"{facts.name}: no_setuid: found {len(found)} setuid/setgid file(s)",
        tuple(evidence),
        "clear the bits in the step that installs the file (chmod u-s,g-s, or COPY --chmod=755), or leave the"
        " program out; a container that needs no privilege change also runs with no-new-privileges;"
        " or allow=[...] the files you keep on purpose",
        details,
    )


NO_SETUID: Check[tuple[str, ...]] = Check(
    "no_setuid",
    check_no_setuid,
    parse=allow_parser("no_setuid", "paths/globs"),
    needs=frozenset({FILESYSTEM}),
    value="`True`, or a list of allowed paths/globs",
    passes="no setuid or setgid file in the filesystem (each listed with mode and owner)",
    helper_param="allow",
    helper_default=(),
    builtin=True,
)
