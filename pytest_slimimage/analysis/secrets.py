"""Find private keys, credentials and tokens in a layer's files, by name and by content, and say
what became of each one in the layers above (``no_secrets``).

The layer index calls :func:`scan_file` on every regular file of every layer as it passes
(:func:`wants_content` says which: text-like files up to :data:`SCAN_LIMIT`), so the findings are
cached with the index by layer digest; :func:`collect_secrets` then follows each finding through the
later layers (deleted, overwritten or hidden: the bytes still ship). :func:`scan_config` reads the
image config's environment and history the same way.

A finding never holds the secret: only its kind, path, line and a masked preview
(:func:`mask`: ``AKIA*************XYZ``). Documented placeholder keys (AWS's ``...EXAMPLE`` key id and
``...EXAMPLEKEY`` secret key), variable references (``${NPM_TOKEN}``), public keys, certificates and a
``BEGIN ... PRIVATE KEY`` header with no key after it (a constant in a library's source) are not
findings.

Pure: bytes in, findings out; imports neither pytest nor docker.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_slimimage.facts import SecretFinding

if TYPE_CHECKING:  # the layer reader imports this module
    from pytest_slimimage.analysis.layers import LayerIndex

__all__ = [
    "DELETED",
    "HIDDEN",
    "OVERWRITTEN",
    "RULES",
    "SCAN_LIMIT",
    "Rule",
    "collect_secrets",
    "mask",
    "mask_text",
    "scan_config",
    "scan_file",
    "wants_content",
]

SCAN_LIMIT = 1024 * 1024
"""Bytes of a file, at most, read for secrets; a bigger file is looked at by name only."""
BINARY_PROBE = 8192
"""A file with a NUL byte in its first this many bytes is binary and not read further."""
PREVIEW_WIDTH = 80

DELETED = "deleted"
OVERWRITTEN = "overwritten"
HIDDEN = "hidden by an opaque directory"

_BINARY_SUFFIXES = (
    ".gz", ".xz", ".bz2", ".zst", ".lz4", ".zip", ".jar", ".whl", ".deb", ".rpm", ".apk", ".so", ".a", ".o",
    ".mo", ".pyc", ".class", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".woff", ".woff2", ".ttf", ".otf", ".db",
    ".sqlite", ".wasm",
)  # fmt: skip
"""Suffixes of files that are binary by format: not read (a shared library named ``libx.so.6``
included). A key store in them (``.p12``, ``.jks``) is outside what this module finds."""
_SHARED_OBJECT = re.compile(r"\.so(?:\.\d+)+$")


# ------------------------------------------------------------------------------------------ masking
def mask(value: str, prefix: int = 0) -> str:
    """``value`` with all but its first ``prefix`` (at most 6) and last 3 characters replaced by
    ``*``; a value shorter than 16 characters is all masked, as 8 ``*``, so its length does not show
    either."""
    if len(value) < 16:
        return "*" * 8
    prefix = min(prefix, 6)
    return value[:prefix] + "*" * (len(value) - prefix - 3) + value[-3:]


def _known_prefix(value: str) -> int:
    for start in ("AKIA", "ASIA", "ABIA", "ACCA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "npm_",
                  "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "pypi-"):  # fmt: skip
        if value.startswith(start):
            return len(start)
    return 0


# ------------------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """One kind of secret: which files it applies to, a quick byte test, and the pattern whose
    ``secret`` group is the value to mask (the preview is the match, that group masked)."""

    id: str
    kind: str
    pattern: re.Pattern[str]
    needles: tuple[bytes, ...] | re.Pattern[bytes] = ()
    """The rule is tried only on files holding one of these, or where this pattern is found (a
    pattern where several short needles share a shape: one pass instead of one per needle); empty:
    on every file it applies to."""
    names: re.Pattern[str] | None = None
    """Paths the rule applies to (searched in the absolute path); None: every file."""
    skip: Callable[[str], bool] = lambda value: False
    """A matched value that is not a secret (a placeholder, a ``${VARIABLE}``)."""
    once: bool = False
    """Report the file's first match only (a ``.env`` file is one finding, however many lines)."""

    def applies(self, path: str) -> bool:
        return self.names is None or self.names.search(path) is not None

    def may_match(self, data: bytes) -> bool:
        """The quick byte test: False when the rule cannot match ``data``."""
        if isinstance(self.needles, re.Pattern):
            return self.needles.search(data) is not None
        return not self.needles or any(needle in data for needle in self.needles)


def _placeholder(value: str) -> bool:
    """A reference to a secret kept elsewhere, or an obvious placeholder, not a secret."""
    stripped = value.strip("'\"")
    return (
        not stripped
        or stripped.startswith(("${", "$(", "%(", "{{", "<"))
        or (stripped.startswith("$") and stripped[1:].replace("_", "").isalnum())
        or stripped.lower() in ("xxx", "changeme", "password", "secret", "token", "none", "null", "***")
    )


def _example(value: str) -> bool:
    return "EXAMPLE" in value


_PEM_BODY = r"[ \t]*(?:\r?\n|\\r?\\n)(?:[A-Za-z-]+:[^\n]*(?:\r?\n|\\n))*(?:\r?\n|\\n)?[ \t]*[A-Za-z0-9+/=]{40}"

RULES: tuple[Rule, ...] = (
    Rule(
        "gcp-service-account",
        "GCP service-account key",
        re.compile(r'"private_key"\s*:\s*"(?P<secret>-----BEGIN [A-Z ]*PRIVATE KEY-----[^"]{40,})"'),
        needles=(b'"service_account"',),
        names=re.compile(r"\.json$"),
    ),
    Rule(
        "gcp-user-credentials",
        "GCP user credentials (refresh token)",
        re.compile(r'"refresh_token"\s*:\s*"(?P<secret>[^"]{16,})"'),
        needles=(b'"authorized_user"',),
        names=re.compile(r"\.json$"),
    ),
    Rule(
        "npm-token",
        "npm registry token (.npmrc)",
        re.compile(r"(?m)^[ \t]*(?://[^\s=]*:)?(?:_authToken|_auth|_password)[ \t]*=[ \t]*(?P<secret>[^\s#;]+)"),
        needles=(b"_auth", b"_password"),
        names=re.compile(r"(?:^|/)\.?npmrc$"),
        skip=_placeholder,
    ),
    Rule(
        "pypi-password",
        "PyPI password or token (.pypirc)",
        re.compile(r"(?m)^[ \t]*password[ \t]*[:=][ \t]*(?P<secret>\S+)"),
        needles=(b"password",),
        names=re.compile(r"(?:^|/)\.pypirc$"),
        skip=_placeholder,
    ),
    Rule(
        "netrc-password",
        "password in .netrc",
        re.compile(r"(?<![A-Za-z0-9_])password[ \t\r\n]+(?P<secret>\S+)"),
        needles=(b"password",),
        names=re.compile(r"(?:^|/)[._]netrc$"),
        skip=_placeholder,
    ),
    Rule(
        "git-credentials",
        "Git credentials (.git-credentials)",
        re.compile(r"(?m)^[ \t]*[a-z][a-z0-9+.-]*://[^:/@\s]+:(?P<secret>[^@\s]+)@\S+"),
        names=re.compile(r"(?:^|/)\.git-credentials$"),
        skip=_placeholder,
    ),
    Rule(
        "docker-auth",
        "Docker registry credentials (config.json auths)",
        re.compile(r'"(?:auth|identitytoken|registrytoken)"\s*:\s*"(?P<secret>[A-Za-z0-9+/=._-]{4,})"'),
        needles=(b'"auths"',),
        names=re.compile(r"(?:^|/)(?:config\.json|\.dockercfg)$"),
    ),
    Rule(
        "ssh-private-key",
        "SSH private key",
        re.compile(r"(?P<header>-----BEGIN OPENSSH PRIVATE KEY-----)(?P<secret>" + _PEM_BODY + ")"),
        needles=(b"BEGIN OPENSSH PRIVATE KEY-----",),
    ),
    Rule(
        "pem-private-key",
        "PEM private key",
        re.compile(
            r"(?P<header>-----BEGIN (?:RSA |DSA |EC |ENCRYPTED |PGP |SSH2 ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----)"
            r"(?P<secret>" + _PEM_BODY + ")"
        ),
        needles=(b"PRIVATE KEY-----", b"PRIVATE KEY BLOCK-----"),
    ),
    Rule(
        "putty-private-key",
        "PuTTY private key",
        re.compile(r"(?P<header>PuTTY-User-Key-File-\d+: \S+)(?P<secret>[\s\S]{0,2000}?Private-Lines: \d+)"),
        needles=(b"PuTTY-User-Key-File-",),
    ),
    Rule(
        "aws-access-key-id",
        "AWS access key id",
        re.compile(r"(?<![A-Za-z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Za-z0-9])"),
        needles=re.compile(rb"A(?:KIA|SIA|BIA|CCA)"),
        skip=_example,
    ),
    Rule(
        "aws-secret-access-key",
        "AWS secret access key",
        re.compile(
            r"(?i:aws_?secret_?access_?key|secretaccesskey)[\"']?\s*[:=]\s*[\"']?"
            r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        needles=(b"ecret_access_key", b"ECRET_ACCESS_KEY", b"ecretAccessKey", b"ecret_Access_Key"),
        skip=_example,
    ),
    Rule(
        "github-token",
        "GitHub token",
        re.compile(r"(?<![A-Za-z0-9_])(?P<secret>gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,255})"),
        needles=re.compile(rb"gh[pousr]_|github_pat_"),
    ),
    Rule(
        "slack-token",
        "Slack token",
        re.compile(r"(?<![A-Za-z0-9])(?P<secret>xox[abprs]-[0-9]{6,}-[A-Za-z0-9-]{10,})"),
        needles=re.compile(rb"xox[abprs]-"),
    ),
    Rule(
        "dotenv",
        ".env file",
        re.compile(
            r"(?m)^[ \t]*(?:export[ \t]+)?(?P<name>[A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*(?P<secret>[^\s#\"']\S*"
            r"|\"[^\"\n]+\"|'[^'\n]+')"
        ),
        names=re.compile(r"(?:^|/)\.env(?:\.(?!(?:example|sample|template|dist|defaults?|schema|tpl)$)[\w.-]+)?$"),
        skip=_placeholder,
        once=True,
    ),
)
"""Tried in this order; text matched by one rule is not reported again by a later one: the rules of
one kind of file first (a GCP key's ``private_key`` is one finding, not a PEM key too; a token in
``.git-credentials`` is Git credentials), then those that apply anywhere; a ``.env`` file's first
assignment no other rule reported, last."""

_CONFIG_RULES = tuple(r for r in RULES if r.names is None)
"""The rules that apply anywhere: also tried on the image config's environment and history."""

SSH_KEY_FILE = re.compile(r"(?:^|/)id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?$")
"""An SSH private key's usual name: reported by name when its content is not read (too big, binary)."""

RULES_VERSION = "1:" + ",".join(
    f"{r.id}={r.pattern.pattern}|{r.needles!r}|{r.names and r.names.pattern}" for r in RULES
)
"""Changes whenever a rule does: part of the layer index's format, so cached findings follow the rules."""


# ------------------------------------------------------------------------------------------ scanning
def wants_content(path: str, size: int) -> bool:
    """Whether the layer index reads this file for secrets: a non-empty file up to
    :data:`SCAN_LIMIT` whose name is not a binary format's."""
    if size <= 0 or size > SCAN_LIMIT:
        return False
    lower = path.lower()
    return not lower.endswith(_BINARY_SUFFIXES) and _SHARED_OBJECT.search(lower) is None


def is_binary(head: bytes) -> bool:
    """A NUL byte in the first :data:`BINARY_PROBE` bytes (as git decides)."""
    return b"\0" in head[:BINARY_PROBE]


def scan_file(path: str, data: bytes | None, size: int | None = None) -> list[SecretFinding]:
    """The secrets in one file of a layer (``path``: absolute and normalised, as the index has it):
    ``data`` its content (None: not read, too big or binary, when only its name is looked at). Each
    finding's ``layer`` is left at -1."""
    if not data and not size:
        return []
    if data is None or is_binary(data):
        if SSH_KEY_FILE.search(path):
            shown = f"{size} bytes" if size is not None else "not read"
            return [SecretFinding("ssh-key-file", "SSH private key file (by name)", path, 0, f"({shown}, not read)")]
        return []
    return _scan_text(path, data, RULES)


def _scan_text(path: str, data: bytes, rules: Sequence[Rule]) -> list[SecretFinding]:
    findings: list[tuple[int, SecretFinding]] = []
    text: str | None = None
    taken: list[tuple[int, int]] = []
    for rule in rules:
        if not rule.applies(path):
            continue
        if not rule.may_match(data):
            continue
        if text is None:
            text = data.decode("latin-1")  # one character per byte: offsets and lines stay exact
        for match in rule.pattern.finditer(text):
            value = match.group("secret")
            if rule.skip(value.strip("'\"")):
                continue
            start, end = match.span()
            if any(start < done_end and done_start < end for done_start, done_end in taken):
                continue
            taken.append((start, end))
            line = text.count("\n", 0, start) + 1
            findings.append((start, SecretFinding(rule.id, _kind(rule, path), path, line, _preview(rule, match))))
            if rule.once:
                break
    return [finding for _, finding in sorted(findings, key=lambda item: item[0])]


def _kind(rule: Rule, path: str) -> str:
    if rule.id == "aws-secret-access-key" and path.endswith("/.aws/credentials"):
        return "AWS credentials file (secret access key)"
    if rule.id == "pem-private-key" and SSH_KEY_FILE.search(path):
        return "SSH private key (PEM)"
    return rule.kind


def _preview(rule: Rule, match: re.Match[str]) -> str:
    """The match with its secret masked; a key's body is left out after its header."""
    groups = match.groupdict()
    if groups.get("header"):
        return _oneline(groups["header"] + " ...")
    if rule.id == "gcp-service-account":  # the key's armour is inside the JSON string
        return '"private_key": "-----BEGIN PRIVATE KEY----- ..."'
    value = match.group("secret")
    quote = value[0] if value[:1] in ("'", '"') and value[-1:] == value[:1] and len(value) > 1 else ""
    inner = value[1:-1] if quote else value
    masked = quote + mask(inner, _known_prefix(inner)) + quote
    start, end = match.span("secret")
    return _oneline(match.string[match.start() : start] + masked + match.string[end : match.end()])


def _oneline(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_WIDTH else text[: PREVIEW_WIDTH - 3] + "..."


def mask_text(text: str) -> str:
    """``text`` (an instruction, an environment value) with every secret the rules that apply
    anywhere find in it masked: safe to print."""
    data = text.encode("latin-1", "replace")
    for rule in _CONFIG_RULES:
        if rule.may_match(data):
            text = rule.pattern.sub(_masked_match, text)
    return text


def _masked_match(match: re.Match[str]) -> str:
    start, end = match.span("secret")
    value = match.group("secret")
    if match.groupdict().get("header"):
        return match.group("header") + " ..."
    return match.string[match.start() : start] + mask(value, _known_prefix(value)) + match.string[end : match.end()]


def scan_config(where: str, text: str) -> list[SecretFinding]:
    """Secrets in a piece of the image config: an ``ENV`` value (``where``: ``ENV NAME``, ``text``:
    ``NAME=value``) or a history entry (a build argument or a literal in a ``RUN`` line is recorded
    there, and ships with the image). Only the rules that apply to any file are tried."""
    data = text.encode("latin-1", "replace")
    return [dataclasses.replace(hit, line=0) for hit in _scan_text(where, data, _CONFIG_RULES)]


# ------------------------------------------------------------------------------------- fate in layers
def collect_secrets(layers: Sequence[LayerIndex]) -> tuple[SecretFinding, ...]:
    """Every layer's findings, numbered by layer (bottom to top, from 0), each with what the layers
    above did to its file: nothing (``ended`` empty), or deleted, overwritten or hidden (by which
    layer). A file a later layer removes still ships in the layer that wrote it."""
    out: list[SecretFinding] = []
    for number, layer in enumerate(layers):
        for finding in layer.secrets:
            ended, ended_in = _fate(finding.path, number, layers)
            out.append(dataclasses.replace(finding, layer=number, ended=ended, ended_in=ended_in))
    return tuple(out)


def _fate(path: str, written: int, layers: Sequence[LayerIndex]) -> tuple[str, int]:
    ancestors = _ancestors(path)
    for number in range(written + 1, len(layers)):
        layer = layers[number]
        if path in layer.whiteouts or any(a in layer.whiteouts for a in ancestors):
            return DELETED, number
        if any(a in layer.opaque_dirs for a in ancestors):
            return HIDDEN, number
        if path in layer.entries:
            return OVERWRITTEN, number
        for ancestor in ancestors:  # a file put where a directory above it stood
            entry = layer.entries.get(ancestor)
            if entry is not None and entry.kind != "dir":
                return DELETED, number
    return "", -1


def _ancestors(path: str) -> list[str]:
    out = []
    parent = posixpath.dirname(path)
    while parent not in ("/", ""):
        out.append(parent)
        parent = posixpath.dirname(parent)
    return out
