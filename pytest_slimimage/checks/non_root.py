"""``non_root``: the image's effective user is not root, resolved as the engine resolves ``USER``
(through the image's own ``/etc/passwd`` and ``/etc/group``): no container is started."""

from __future__ import annotations

from pytest_slimimage.analysis.users import PASSWD, effective_user
from pytest_slimimage.checks.check import FILESYSTEM, Check, parse_flag
from pytest_slimimage.checks.provenance import history_where, shown
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.facts import ImageFacts

NUMERIC_HINT = "a numeric uid needs no /etc/passwd entry (USER 65534 is nobody's)"


def check_non_root(facts: ImageFacts, expected: bool = True) -> CheckResult:
    """The image runs as a user other than root: ``USER`` is set, is not ``0``/``root`` (nor a name
    the image's ``/etc/passwd`` maps to uid 0), and names a user (and group) the image has."""
    spec = facts.config.user
    user = effective_user(spec, facts.filesystem)
    where = history_where(facts, "USER")
    evidence: list[str] = []
    if spec.strip():
        line = f"USER {spec}"
        if where is not None:
            line = f"{shown(where[0])} ({where[1]})"
        evidence.append(line)
    else:
        evidence.append("no USER in the image config (nor in its base): the engine runs it as root, uid 0")
    details = {"user": spec, "uid": user.uid, "gid": user.gid, "how": user.how, "problem": user.problem}
    if user.problem:
        evidence.append("the engine refuses to start a container whose user the image does not define")
        return CheckResult(
            "non_root",
            facts.name,
            False,
            f"{facts.name}: non_root: USER {spec} cannot start: {user.problem}",
            tuple(evidence),
            f"add the user to the image's {PASSWD} (and /etc/group), or use a numeric uid: {NUMERIC_HINT}",
            details,
        )
    if user.root:
        shown_user = "USER unset" if not spec.strip() else f"USER {spec} is uid 0 ({user.how})"
        return CheckResult(
            "non_root",
            facts.name,
            False,
            f"{facts.name}: non_root: runs as root ({shown_user})",
            tuple(evidence),
            f"add USER <uid> to the final stage, after the steps that need root: {NUMERIC_HINT}",
            details,
        )
    group = "" if user.gid != 0 else ", group 0 (root's group: no passwd entry gives it another)"
    return CheckResult(
        "non_root",
        facts.name,
        True,
        f"{facts.name}: non_root: runs as uid {user.uid} (USER {spec}, {user.how}){group}",
        details=details,
    )


NON_ROOT: Check[bool] = Check(
    "non_root",
    check_non_root,
    parse=parse_flag,
    needs=frozenset({FILESYSTEM}),
    value="`True`",
    passes="the effective user is not root: USER set, not `0`/`root`, a name found in the image's /etc/passwd"
    " (a numeric uid needs none)",
    helper_param="expected",
    helper_default=True,
    builtin=True,
)
