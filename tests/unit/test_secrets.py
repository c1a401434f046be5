"""The secret detectors (no engine): what each rule finds, the near misses it must not, masking, the
config and history, and what later layers did to a file that held one.

No secret-shaped text is written out in this file: every true positive is assembled at run time
(``"AK" + "IA" + ...``), so that the repository passes its own scan.
"""

from __future__ import annotations

import json
import random
import string

import pytest

from pytest_slimimage.analysis.layers import LayerIndex
from pytest_slimimage.analysis.secrets import (
    DELETED,
    HIDDEN,
    OVERWRITTEN,
    RULES,
    SCAN_LIMIT,
    collect_secrets,
    mask,
    mask_text,
    scan_config,
    scan_file,
    wants_content,
)
from pytest_slimimage.facts import FileEntry, SecretFinding

ALNUM = string.ascii_letters + string.digits


def token(n: int, alphabet: str = ALNUM, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


AWS_ID = "AK" + "IA" + token(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 1)
AWS_SECRET = token(40, ALNUM + "/+", 2)
BODY = "\n".join(token(64, ALNUM + "+/", 3 + n) for n in range(4))


def pem(label: str = "RSA ") -> str:
    return f"-----BEGIN {label}PRIVATE KEY-----\n{BODY}\n-----END {label}PRIVATE KEY-----\n"


def found(path: str, text: str | bytes) -> list[tuple[str, int, str]]:
    """(rule, line, preview) of every finding."""
    data = text.encode() if isinstance(text, str) else text
    return [(f.rule, f.line, f.preview) for f in scan_file(path, data, len(data))]


def rules(path: str, text: str) -> list[str]:
    return [rule for rule, _, _ in found(path, text)]


# --------------------------------------------------------------------------------- true positives
@pytest.mark.parametrize(
    ("label", "rule", "kind"),
    [
        ("RSA ", "pem-private-key", "PEM private key"),
        ("", "pem-private-key", "PEM private key"),
        ("EC ", "pem-private-key", "PEM private key"),
        ("ENCRYPTED ", "pem-private-key", "PEM private key"),
        ("OPENSSH ", "ssh-private-key", "SSH private key"),
    ],
)
def test_private_keys(label: str, rule: str, kind: str) -> None:
    [finding] = scan_file("/srv/tls/server.key", pem(label).encode())
    assert (finding.rule, finding.kind, finding.line) == (rule, kind, 1)
    assert finding.preview == f"-----BEGIN {label}PRIVATE KEY----- ..."  # the header only: never the key
    assert BODY.splitlines()[0] not in finding.preview


def test_a_pem_key_in_an_ssh_key_files_name_is_an_ssh_key() -> None:
    [finding] = scan_file("/root/.ssh/id_rsa", pem().encode())
    assert finding.kind == "SSH private key (PEM)"


def test_a_legacy_encrypted_pem_key_with_headers() -> None:
    text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF\n\n" + BODY + "\n"
    assert rules("/k.pem", text) == ["pem-private-key"]


def test_a_pgp_private_key_block() -> None:
    text = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + BODY + "\n-----END PGP PRIVATE KEY BLOCK-----\n"
    assert rules("/home/a/secret.asc", text) == ["pem-private-key"]


def test_a_key_in_the_middle_of_a_source_file_is_found_on_its_line() -> None:
    text = 'import x\n\nKEY = """\n' + pem() + '"""\n'
    assert found("/app/settings.py", text) == [("pem-private-key", 4, "-----BEGIN RSA PRIVATE KEY----- ...")]


def test_aws_access_key_id_and_secret() -> None:
    text = f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"
    assert found("/root/.aws/credentials", text) == [
        ("aws-access-key-id", 2, AWS_ID[:4] + "*" * 13 + AWS_ID[-3:]),
        ("aws-secret-access-key", 3, "aws_secret_access_key = " + "*" * 37 + AWS_SECRET[-3:]),
    ]
    [_, secret] = scan_file("/root/.aws/credentials", text.encode())
    assert secret.kind == "AWS credentials file (secret access key)"
    [_, elsewhere] = scan_file("/app/config.ini", text.encode())
    assert elsewhere.kind == "AWS secret access key"


@pytest.mark.parametrize(
    "line",
    [
        "AWS_SECRET_ACCESS_KEY={s}",
        'export AWS_SECRET_ACCESS_KEY="{s}"',
        '"SecretAccessKey": "{s}"',
        "awsSecretAccessKey: {s}",
    ],
)
def test_aws_secret_key_spellings(line: str) -> None:
    assert rules("/app/x.conf", line.format(s=AWS_SECRET)) == ["aws-secret-access-key"]


def test_gcp_service_account_json_is_one_finding() -> None:
    text = json.dumps(
        {"type": "service_account", "project_id": "p", "private_key_id": "ab12", "private_key": pem("")}, indent=2
    )
    assert found("/app/sa.json", text) == [
        ("gcp-service-account", 5, '"private_key": "-----BEGIN PRIVATE KEY----- ..."')
    ]


def test_gcp_user_credentials() -> None:
    text = json.dumps({"type": "authorized_user", "client_id": "x", "refresh_token": "1//" + token(40, seed=4)})
    [(rule, line, preview)] = found("/root/.config/gcloud/application_default_credentials.json", text)
    assert rule == "gcp-user-credentials" and line == 1 and preview.startswith('"refresh_token": "****')


def test_npmrc_pypirc_netrc_git_credentials() -> None:
    npm = "npm_" + token(36, seed=5)
    assert found("/home/node/.npmrc", f"registry=https://r.example.com/\n//r.example.com/:_authToken={npm}\n") == [
        ("npm-token", 2, f"//r.example.com/:_authToken=npm_{'*' * 33}{npm[-3:]}")
    ]
    pypi = "pypi-" + token(50, seed=6)
    assert found("/root/.pypirc", f"[pypi]\nusername = __token__\npassword = {pypi}\n") == [
        ("pypi-password", 3, f"password = pypi-{'*' * 47}{pypi[-3:]}")
    ]
    assert found("/root/.netrc", "machine h login me\npassword hunter2hunter2\n") == [
        ("netrc-password", 2, "password ********")  # short values: length hidden too
    ]
    pat = "gh" + "p_" + token(36, seed=7)
    assert found("/root/.git-credentials", f"https://me:{pat}@github.com\n") == [
        ("git-credentials", 1, f"https://me:ghp_{'*' * 33}{pat[-3:]}@github.com")
    ]


def test_docker_config_with_auths() -> None:
    auth = "cm9ib3Q6" + token(24, seed=8)
    text = json.dumps({"auths": {"registry.example.com": {"auth": auth}}, "credsStore": ""})
    assert found("/root/.docker/config.json", text) == [
        ("docker-auth", 1, '"auth": "' + "*" * (len(auth) - 3) + auth[-3:] + '"')
    ]


def test_dotenv_files_are_one_finding_each() -> None:
    text = "# settings\n\nDEBUG=1\nDATABASE_URL=postgres://u:p@db/app\n"
    assert found("/app/.env", text) == [("dotenv", 3, "DEBUG=********")]
    assert rules("/app/.env.production", "KEY=value-of-it\n") == ["dotenv"]


def test_github_and_slack_tokens_anywhere() -> None:
    assert rules("/app/deploy.sh", "curl -H 'Authorization: token " + "gh" + "s_" + token(36, seed=9) + "'\n") == [
        "github-token"
    ]
    assert rules("/app/notify.py", 'SLACK = "' + "xo" + "xb-" + "1234567890-" + token(24, seed=10) + '"\n') == [
        "slack-token"
    ]


def test_an_ssh_key_file_too_big_to_read_is_reported_by_name() -> None:
    assert scan_file("/root/.ssh/id_ed25519", None, SCAN_LIMIT + 1) == [
        SecretFinding(
            "ssh-key-file", "SSH private key file (by name)", "/root/.ssh/id_ed25519", 0, "(1048577 bytes, not read)"
        )
    ]


# ----------------------------------------------------------------------------------- near misses
NEAR_MISSES = {
    "a public key": ("/etc/ssl/pub.pem", "-----BEGIN PUBLIC KEY-----\n" + BODY + "\n-----END PUBLIC KEY-----\n"),
    "an OpenSSH public key": ("/root/.ssh/id_ed25519.pub", "ssh-ed25519 " + token(68, seed=11) + " me@host\n"),
    "a certificate": (
        "/etc/ssl/certs/ca.pem",
        "-----BEGIN CERTIFICATE-----\n" + BODY + "\n-----END CERTIFICATE-----\n",
    ),
    "the string BEGIN CERTIFICATE": ("/usr/lib/python3/ssl.py", 'PEM_HEADER = "-----BEGIN CERTIFICATE-----"\n'),
    "a private key header as a constant": (
        "/usr/lib/python3/dist-packages/crypto/pem.py",
        'HEADER = "-----BEGIN RSA PRIVATE KEY-----"\nFOOTER = "-----END RSA PRIVATE KEY-----"\n',
    ),
    "AWS's documented example key id": ("/usr/share/doc/aws/README", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"),
    "AWS's documented example secret": (
        "/usr/share/doc/aws/README",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    ),
    "a key id inside a longer word": ("/app/x.txt", "X" + AWS_ID + "\n"),
    "an npm token from the environment": ("/app/.npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n"),
    "a pypirc without a password": ("/root/.pypirc", "[pypi]\nusername = __token__\n"),
    "a netrc without a password": ("/root/.netrc", "machine example.com login anonymous\n"),
    "a docker config without credentials": (
        "/root/.docker/config.json",
        '{"auths": {"ghcr.io": {}}, "credsStore": "desktop"}',
    ),
    "auths in a file not named config.json": ("/app/auths.json", '{"auths": {"r": {"auth": "dXNlcjpwYXNz"}}}'),
    "an env template": ("/app/.env.example", "DATABASE_PASSWORD=secret-here\n"),
    "an env file of comments": ("/app/.env", "# DATABASE_PASSWORD=\n\n"),
    "an env file with an empty value": ("/app/.env", "TOKEN=\n"),
    "a password in an ordinary file": ("/etc/app.conf", "password = hunter2hunter2\n"),
    "a service account without a key": ("/app/sa.json", '{"type": "service_account", "client_email": "a@b"}'),
    "a binary file": ("/usr/lib/blob.bin", "\0\0" + pem()),
}


@pytest.mark.parametrize("case", list(NEAR_MISSES))
def test_near_misses_are_not_found(case: str) -> None:
    path, text = NEAR_MISSES[case]
    assert found(path, text) == []


@pytest.mark.parametrize(
    ("path", "size", "wanted"),
    [
        ("/app/config.yaml", 10, True),
        ("/app/config.yaml", 0, False),
        ("/app/big.log", SCAN_LIMIT + 1, False),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", 100, False),
        ("/usr/lib/libz.so", 100, False),
        ("/usr/share/locale/de/LC_MESSAGES/x.mo", 100, False),
        ("/usr/share/doc/x/changelog.gz", 100, False),
        ("/usr/lib/python3/x.pyc", 100, False),
        ("/root/.ssh/id_rsa", 3000, True),
    ],
)
def test_which_files_are_read(path: str, size: int, wanted: bool) -> None:
    assert wants_content(path, size) is wanted


# ---------------------------------------------------------------------------------------- masking
def test_mask() -> None:
    assert mask("AKIA" + "A" * 16, 4) == "AKIA" + "*" * 13 + "AAA"
    assert mask("short") == "********"
    assert mask("fifteen-chars-x") == "********"  # under 16: neither value nor length shows
    assert mask("x" * 40) == "*" * 37 + "xxx"
    assert mask("y" * 40, 20) == "yyyyyy" + "*" * 31 + "yyy"  # at most 6 kept in front


def test_mask_text_masks_tokens_in_an_instruction() -> None:
    text = f"RUN echo {AWS_ID} > /k && echo AWS_SECRET_ACCESS_KEY={AWS_SECRET}"
    masked = mask_text(text)
    assert AWS_ID not in masked and AWS_SECRET not in masked
    assert masked.startswith("RUN echo AKIA*************")
    assert mask_text("RUN make -j4") == "RUN make -j4"


def test_no_preview_holds_a_secret() -> None:
    """Every rule's finding on its own true positive: the value is not in the preview."""
    values = {
        "/a/.npmrc": "_authToken=npm_" + token(36, seed=20),
        "/a/.pypirc": "password = " + token(30, seed=21),
        "/a/.netrc": "password " + token(30, seed=22),
        "/a/.git-credentials": "https://u:" + token(30, seed=23) + "@h",
        "/a/config.json": '{"auths": {"r": {"auth": "' + token(30, seed=24) + '"}}}',
        "/a/.env": "X=" + token(30, seed=25),
        "/a/x.txt": AWS_ID + " " + "AWS_SECRET_ACCESS_KEY=" + AWS_SECRET,
    }
    for path, text in values.items():
        findings = scan_file(path, text.encode(), len(text))
        assert findings, path
        secret = text.rsplit("=", 1)[-1].rsplit(" ", 1)[-1].split("@")[0].split(":")[-1].strip('"}')
        for finding in findings:
            assert secret[:-3] not in finding.preview, (path, finding)


def test_every_rule_has_an_id_and_a_kind() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
    assert all(r.kind for r in RULES)


# --------------------------------------------------------------------------------- image config
def test_config_environment_and_history() -> None:
    assert [f.rule for f in scan_config("ENV AWS_ACCESS_KEY_ID", f"AWS_ACCESS_KEY_ID={AWS_ID}")] == [
        "aws-access-key-id"
    ]
    pat = "gh" + "p_" + token(36, seed=30)
    [hit] = scan_config("image history", f"RUN |1 GITHUB_TOKEN={pat} /bin/sh -c make # buildkit")
    assert (hit.rule, hit.path, hit.line, hit.preview) == (
        "github-token",
        "image history",
        0,
        f"ghp_{'*' * 33}{pat[-3:]}",
    )
    assert scan_config("ENV PATH", "PATH=/usr/local/bin:/usr/bin") == []
    assert scan_config("ENV GPG_KEY", "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D") == []  # a fingerprint
    # name-scoped rules do not apply to the config: a .env-looking value is not a finding
    assert scan_config("ENV DB", "DB=postgres") == []


# ----------------------------------------------------------------------------------- their fate
def layer(
    entries: tuple[str, ...] = (),
    secrets: tuple[str, ...] = (),
    whiteouts: tuple[str, ...] = (),
    opaque: tuple[str, ...] = (),
    kinds: dict[str, str] | None = None,
) -> LayerIndex:
    kinds = kinds or {}
    return LayerIndex(
        digest="sha256:" + "0" * 64,
        entries={p: FileEntry(p, kinds.get(p, "file")) for p in entries},
        whiteouts=list(whiteouts),
        opaque_dirs=list(opaque),
        secrets=[SecretFinding("pem-private-key", "PEM private key", p, 1, "-----BEGIN ...") for p in secrets],
    )


def fates(*layers: LayerIndex) -> list[tuple[str, int, str, int]]:
    return [(f.path, f.layer, f.ended, f.ended_in) for f in collect_secrets(layers)]


def test_a_secret_still_in_place() -> None:
    assert fates(layer(("/k",), ("/k",)), layer(("/other",))) == [("/k", 0, "", -1)]


def test_a_secret_deleted_overwritten_or_hidden_later() -> None:
    assert fates(layer(("/k",), ("/k",)), layer(), layer(whiteouts=("/k",))) == [("/k", 0, DELETED, 2)]
    assert fates(layer(("/d/k",), ("/d/k",)), layer(whiteouts=("/d",))) == [("/d/k", 0, DELETED, 1)]
    assert fates(layer(("/k",), ("/k",)), layer(("/k",))) == [("/k", 0, OVERWRITTEN, 1)]
    assert fates(layer(("/d/k",), ("/d/k",)), layer(opaque=("/d",))) == [("/d/k", 0, HIDDEN, 1)]
    # a file put where its directory stood removes what the directory held
    assert fates(layer(("/d/k",), ("/d/k",)), layer(("/d",), kinds={"/d": "file"})) == [("/d/k", 0, DELETED, 1)]
    # a directory written again above it keeps it
    assert fates(layer(("/d/k",), ("/d/k",)), layer(("/d",), kinds={"/d": "dir"})) == [("/d/k", 0, "", -1)]


def test_the_same_secret_written_twice_is_two_findings() -> None:
    assert fates(layer(("/k",), ("/k",)), layer(("/k",), ("/k",))) == [("/k", 0, OVERWRITTEN, 1), ("/k", 1, "", -1)]


def test_layer_text_in_failures_is_masked() -> None:
    """A literal secret in a RUN line ships in the image's history; a size or growth failure that
    lists the largest layers must not print it."""
    from pytest_slimimage.analysis.attribution import layer_lines
    from pytest_slimimage.baseline import BaselineEntry, parse_growth
    from pytest_slimimage.checks.growth import check_max_growth
    from pytest_slimimage.facts import ImageConfig, ImageFacts, Layer

    run = f"/bin/sh -c echo {AWS_ID} > /k && echo AWS_SECRET_ACCESS_KEY={AWS_SECRET} > /env"
    facts = ImageFacts("app", "sha256:" + "0" * 64, 9_000, ImageConfig(), (Layer(run, 9_000, False),))
    for text in [
        "\n".join(layer_lines(facts)),
        check_max_growth(
            facts.__class__(**{**facts.__dict__, "baseline": BaselineEntry(1)}), parse_growth("1%")
        ).message(),
    ]:
        assert AWS_ID not in text and AWS_SECRET not in text, text
        assert "AKIA" in text
