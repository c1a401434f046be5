"""What an image exposes, read from its layers on the real engine: shells, package managers, the
user it runs as, setuid files and secrets -- on images that pass and images that fail.

The images are tiny (busybox, or scratch with the static hello), made from
``tests/integration/contexts/hygiene``; where the engine can confirm a verdict cheaply it is asked
(busybox's ``sh`` applet runs, a renamed busybox is still a shell, ``USER nobody`` without a passwd
file does not start). The secrets image is made from a context written here, so that no
secret-shaped text is committed to the repository: the fake keys and tokens are assembled at run time.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import re
import string
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_slimimage import (
    BuiltImage,
    ImageCheckFailed,
    assert_no_package_manager,
    assert_no_secrets,
    assert_no_setuid,
    assert_no_shell,
    assert_non_root,
    assert_runs,
    image_fixture,
)
from tests.integration.conftest import CONTEXTS
from tests.plugin.support import block, outcomes, plain_error

HYGIENE = CONTEXTS / "hygiene"
FIVE = ("no_shell", "no_package_manager", "non_root", "no_setuid", "no_secrets")

distroless = image_fixture(HYGIENE, dockerfile="Dockerfile.distroless")
on_busybox = image_fixture(HYGIENE, dockerfile="Dockerfile.busybox")
renamed_busybox = image_fixture(HYGIENE, dockerfile="Dockerfile.renamed")
nobody = image_fixture(HYGIENE, dockerfile="Dockerfile.nobody")
named_user = image_fixture(HYGIENE, dockerfile="Dockerfile.passwd")
setuid = image_fixture(HYGIENE, dockerfile="Dockerfile.setuid")
key_deleted = image_fixture(HYGIENE, dockerfile="Dockerfile.keydeleted")

BUSYBOX_BASE = re.compile(r"    written by layer 1: COPY file:[0-9a-f]+\.\.\. \(base busybox:latest\)")
"""The base image's COPY of /bin/busybox (named by the digest of the busybox-static it was made from)."""


def failure(excinfo: pytest.ExceptionInfo[ImageCheckFailed]) -> list[str]:
    return str(excinfo.value).splitlines()


# ----------------------------------------------------------------------- distroless: passes all five
def test_a_static_binary_alone_in_scratch_passes_all_five(distroless: BuiltImage) -> None:
    assert assert_no_shell(distroless).headline == "distroless: no_shell: no shell among 1 paths"
    assert assert_no_package_manager(distroless).passed
    assert assert_non_root(distroless).headline == (
        "distroless: non_root: runs as uid 65534 (USER 65534, numeric), group 0 (root's group: no passwd entry"
        " gives it another)"
    )
    assert assert_no_setuid(distroless).passed
    assert assert_no_secrets(distroless).headline == "distroless: no_secrets: no secret in its 1 layer(s) or its config"
    assert_runs(distroless, "hello from static C")  # and it runs, as uid 65534, with no passwd file


# --------------------------------------------------------------------------------------- no_shell
def test_busyboxs_sh_is_an_applet_of_one_binary(on_busybox: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_shell(on_busybox)
    lines = failure(excinfo)
    assert lines[:2] == [
        "on_busybox: no_shell: found 1 shell(s) (busybox)",
        "  /bin/busybox (busybox, a multi-call binary with a shell applet; as /bin/ash, /bin/sh)",
    ]
    assert BUSYBOX_BASE.fullmatch(lines[2]), lines[2]
    assert lines[-1].startswith("  hint: ship the program alone: a final stage FROM scratch or a distroless")
    assert assert_no_shell(on_busybox, allow=["busybox"]).passed
    assert assert_no_shell(on_busybox, allow=["/bin/sh"]).passed  # a shell is allowed by any name that reaches it
    assert_runs(on_busybox, "a shell", args=["sh", "-c", "echo a shell"])  # the engine agrees


def test_a_renamed_busybox_is_a_shell_by_its_content(renamed_busybox: BuiltImage) -> None:
    """Named ``tool``, busybox still holds ash: whoever can start it as ``sh`` (any ``execve`` with that
    ``argv[0]``) has a shell. Found by its bytes."""
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_shell(renamed_busybox)
    assert failure(excinfo)[:3] == [
        "renamed_busybox: no_shell: found 1 shell(s) (busybox)",
        "  /usr/local/bin/tool (busybox, a shell by its content)",
        "    written by layer 1: COPY /bin/busybox /usr/local/bin/tool (Dockerfile line 3)",
    ]
    assert assert_no_package_manager(renamed_busybox).passed  # no applet links: no dpkg, no rpm


# ----------------------------------------------------------------------------- no_package_manager
def test_busyboxs_dpkg_and_rpm_applets_are_package_managers(on_busybox: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_package_manager(on_busybox)
    assert failure(excinfo)[:4] == [
        "on_busybox: no_package_manager: found 2 OS package managers (dpkg, rpm) and no language installer",
        "  OS package managers:",
        "    /bin/dpkg -> /bin/busybox  (layer 2: /bin/busybox --install -s /bin (base busybox:latest))",
        "    /bin/rpm -> /bin/busybox  (layer 2: /bin/busybox --install -s /bin (base busybox:latest))",
    ]
    assert assert_no_package_manager(on_busybox, allow=["dpkg", "rpm"]).passed


# --------------------------------------------------------------------------------------- non_root
def test_no_user_is_root(on_busybox: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_non_root(on_busybox)
    assert failure(excinfo) == [
        "on_busybox: non_root: runs as root (USER unset)",
        "  no USER in the image config (nor in its base): the engine runs it as root, uid 0",
        "  hint: add USER <uid> to the final stage, after the steps that need root: a numeric uid needs no"
        " /etc/passwd entry (USER 65534 is nobody's)",
    ]


def test_user_nobody_in_scratch_without_a_passwd_file_cannot_start(nobody: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_non_root(nobody)
    assert failure(excinfo) == [
        "nobody: non_root: USER nobody cannot start: unable to find user nobody: the image has no /etc/passwd",
        "  USER nobody (Dockerfile line 9)",
        "  the engine refuses to start a container whose user the image does not define",
        "  hint: add the user to the image's /etc/passwd (and /etc/group), or use a numeric uid: a numeric uid"
        " needs no /etc/passwd entry (USER 65534 is nobody's)",
    ]
    result = nobody.run()  # the engine agrees: the container does not start
    assert result.exit_code != 0
    assert "unable to find user nobody" in result.start_error + result.stderr, result


def test_a_named_user_resolves_through_the_images_own_passwd(named_user: BuiltImage) -> None:
    passed = assert_non_root(named_user)
    assert passed.headline == "named_user: non_root: runs as uid 10001 (USER app:app, /etc/passwd line 2)"
    assert passed.details["gid"] == 10002  # app's group, from /etc/group
    assert_runs(named_user, "hello from static C")


# -------------------------------------------------------------------------------------- no_setuid
def test_setuid_and_setgid_files_are_listed_with_mode_and_owner(setuid: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_setuid(setuid)
    lines = failure(excinfo)
    written_by = (
        "    written by layer 4: RUN echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd && echo 'root..."
        " (Dockerfile lines 9-11)"
    )
    assert lines[:5] == [
        "setuid: no_setuid: found 2 setuid/setgid file(s)",
        "  -rwsr-xr-x 4755 root:root (0:0)  /usr/local/bin/hello  (setuid)",
        written_by,
        "  -rwxr-sr-x 2755 root:staff (0:50)  /usr/local/bin/hello-staff  (setgid)",
        written_by,
    ]
    assert lines[-1].startswith("  hint: clear the bits in the step that installs the file (chmod u-s,g-s")
    assert assert_no_setuid(setuid, allow=["/usr/local/bin/hello*"]).passed


def test_busybox_itself_has_no_setuid_file(on_busybox: BuiltImage) -> None:
    passed = assert_no_setuid(on_busybox)
    assert passed.headline.startswith("on_busybox: no_setuid: no setuid or setgid file among ")


# ------------------------------------------------------------------------------------- no_secrets
def test_a_key_deleted_by_the_next_layer_still_ships(key_deleted: BuiltImage) -> None:
    assert "/root/.ssh/id_ed25519" not in key_deleted.filesystem  # gone from the final filesystem
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_secrets(key_deleted)
    lines = failure(excinfo)
    assert lines[:4] == [
        "key_deleted: no_secrets: found 1 secret(s) in 1 layer(s), 1 of them deleted by a later layer but still"
        " shipped",
        "  /root/.ssh/id_ed25519:1  SSH private key: -----BEGIN OPENSSH PRIVATE KEY----- ...",
        "    added in layer 3: RUN mkdir -p /root/.ssh && (echo '-----BEGIN OPENSSH PRIVATE KEY---... (Dockerfile"
        " line 4)",
        "    deleted in layer 4: RUN rm /root/.ssh/id_ed25519 (Dockerfile line 5), still shipped",
    ]
    assert lines[-1].startswith("  hint: a file deleted by a later layer still ships in the layer that added it:")
    assert assert_no_secrets(key_deleted, allow=["/root/.ssh/*"]).passed


# A context that leaks: credentials of every kind the check knows, copied in with `COPY . /app`, one
# of them deleted by the next layer, a token passed as a build argument; and a clean copy of it that
# a .dockerignore keeps them out of.
LEAKY_DOCKERFILE = """\
FROM busybox:latest
COPY . /app
RUN rm -rf /app/.aws
ARG DEPLOY_TOKEN
RUN test -n "$DEPLOY_TOKEN" && echo configured >/app/deploy.txt
CMD ["true"]
"""
DOCKERIGNORE = "**/.aws\n**/.env\n**/.npmrc\n**/.pypirc\n**/.netrc\n**/.git-credentials\n**/.docker\nkeys/id_rsa\ngcp\n"


def _token(alphabet: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
SECRETS = {
    "aws_id": "AK" + "IA" + _token("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 1),
    "aws_secret": _token(ALNUM + "/+", 40, 2),
    "npm": "npm_" + _token(ALNUM, 36, 3),
    "github": "gh" + "p_" + _token(ALNUM, 36, 4),
    "env_password": "pw-" + _token(ALNUM, 20, 5),
    "netrc": _token(ALNUM, 24, 6),
    "pypi": "pypi-" + _token(ALNUM, 60, 7),
    "docker": base64.b64encode(b"robot:" + _token(ALNUM, 24, 8).encode()).decode(),
    "deploy": "gh" + "s_" + _token(ALNUM, 36, 9),
}
"""Fake secrets, made at run time (the repository holds none)."""
KEY_BODY = "\n".join(_token(ALNUM + "+/", 64, 10 + n) for n in range(6))


def _write_context(root: Path, *, ignore: bool) -> Path:
    s = SECRETS
    pem = "-----BEGIN RSA " + "PRIVATE KEY-----\n" + KEY_BODY + "\n-----END RSA " + "PRIVATE KEY-----\n"
    files = {
        "Dockerfile": LEAKY_DOCKERFILE,
        ".aws/credentials": (
            f"[default]\naws_access_key_id = {s['aws_id']}\naws_secret_access_key = {s['aws_secret']}\n"
        ),
        ".env": f"# local settings\nDATABASE_PASSWORD={s['env_password']}\n",
        ".env.example": "DATABASE_PASSWORD=changeme\n",  # a template: not a secret
        ".npmrc": f"//registry.npmjs.org/:_authToken={s['npm']}\n",
        ".pypirc": f"[pypi]\nusername = __token__\npassword = {s['pypi']}\n",
        ".netrc": f"machine api.example.com login robot password {s['netrc']}\n",
        ".git-credentials": f"https://robot:{s['github']}@github.com\n",
        ".docker/config.json": json.dumps({"auths": {"registry.example.com": {"auth": s["docker"]}}}, indent=1),
        "keys/id_rsa": pem,
        "keys/id_rsa.pub": "ssh-rsa " + _token(ALNUM, 200, 20) + " robot@example.com\n",  # public: not a secret
        "gcp/service-account.json": json.dumps(
            {"type": "service_account", "project_id": "demo", "private_key": pem, "client_email": "a@b.iam"}, indent=1
        ),
        "README.md": "AWS's documented example key, AKIAIOSFODNN7EXAMPLE, is not a secret.\n",
    }
    if ignore:
        files[".dockerignore"] = DOCKERIGNORE
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="session")
def leaky_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return (
        _write_context(tmp_path_factory.mktemp("leaky"), ignore=False),
        _write_context(tmp_path_factory.mktemp("ignored"), ignore=True),
    )


@pytest.fixture(scope="session")
def leaky(slimimage_build: Callable[..., BuiltImage], leaky_contexts: tuple[Path, Path]) -> BuiltImage:
    return slimimage_build(leaky_contexts[0], name="leaky", build_args={"DEPLOY_TOKEN": SECRETS["deploy"]})


@pytest.fixture(scope="session")
def ignored(slimimage_build: Callable[..., BuiltImage], leaky_contexts: tuple[Path, Path]) -> BuiltImage:
    return slimimage_build(leaky_contexts[1], name="ignored", build_args={"DEPLOY_TOKEN": "-"})


def test_every_kind_of_secret_is_found_where_it_was_added(leaky: BuiltImage) -> None:
    with pytest.raises(ImageCheckFailed) as excinfo:
        assert_no_secrets(leaky)
    text = str(excinfo.value)
    lines = text.splitlines()
    for secret in SECRETS.values():
        assert secret not in text  # masked
    assert lines[0] == (
        "leaky: no_secrets: found 11 secret(s) in 1 layer(s), 2 of them deleted by a later layer but still shipped,"
        " 1 in the image config"
    )
    copied = "    added in layer 3: COPY . /app (Dockerfile line 2)"
    aws = SECRETS["aws_id"]
    expected = [
        f"  /app/.aws/credentials:2  AWS access key id: {aws[:4]}{'*' * 13}{aws[-3:]}",
        copied,
        "    deleted in layer 4: RUN rm -rf /app/.aws (Dockerfile line 3), still shipped",
        "  /app/.aws/credentials:3  AWS credentials file (secret access key): aws_secret_access_key ="
        f" {'*' * 37}{SECRETS['aws_secret'][-3:]}",
        '  /app/.docker/config.json:4  Docker registry credentials (config.json auths): "auth":'
        f' "{"*" * (len(SECRETS["docker"]) - 3)}{SECRETS["docker"][-3:]}"',
        "  /app/.env:2  .env file: DATABASE_PASSWORD=" + "*" * 20 + SECRETS["env_password"][-3:],
        "  /app/.git-credentials:1  Git credentials (.git-credentials): https://robot:ghp_"
        + "*" * 33
        + SECRETS["github"][-3:]
        + "@github.com",
        f"  /app/.netrc:1  password in .netrc: password {'*' * 21}{SECRETS['netrc'][-3:]}",
        f"  /app/.npmrc:1  npm registry token (.npmrc): //registry.npmjs.org/:_authToken=npm_{'*' * 33}"
        f"{SECRETS['npm'][-3:]}",
        "  /app/.pypirc:3  PyPI password or token (.pypirc): password = pypi-" + "*" * 57 + SECRETS["pypi"][-3:],
        '  /app/gcp/service-account.json:4  GCP service-account key: "private_key": "-----BEGIN PRIVATE KEY----- ..."',
        "  /app/keys/id_rsa:1  SSH private key (PEM): -----BEGIN RSA PRIVATE KEY----- ...",
    ]
    for line in expected:
        assert line in lines, (line, text)
    # the build argument, recorded in the history of the RUN that used it
    assert (
        """  history of RUN test -n "$DEPLOY_TOKEN" && echo configured >/app/deploy.txt (Dockerfile line 5)"""
        f"  GitHub token: ghs_{'*' * 33}{SECRETS['deploy'][-3:]}"
    ) in lines, text
    for near_miss in ("/app/.env.example", "/app/keys/id_rsa.pub", "/app/README.md"):
        assert near_miss not in text
    assert lines[-1] == (
        "  hint: a file deleted by a later layer still ships in the layer that added it: pass secrets to the build"
        " with RUN --mount=type=secret (BuildKit), or use them in a build stage that is not the final one; keep"
        " them out of the context (.dockerignore), ENV and build args (the image config records them); rotate any"
        " credential an image was pushed with, or allow=[...] test keys kept on purpose"
    )


def test_a_dockerignore_keeps_them_out(ignored: BuiltImage) -> None:
    assert assert_no_secrets(ignored).passed
    assert "/app/.env.example" in ignored.filesystem and "/app/keys/id_rsa.pub" in ignored.filesystem


def _cache_texts(root: Path) -> str:
    return "\n".join(gzip.decompress(p.read_bytes()).decode("utf-8", "replace") for p in root.rglob("*.json.gz"))


DECLARED = """
[tool.slimimage.images.leaky]
context = {leaky!r}
build_args = {{ DEPLOY_TOKEN = {deploy!r} }}
no_secrets = true

[tool.slimimage.images.ignored]
context = {ignored!r}
build_args = {{ DEPLOY_TOKEN = "-" }}
no_secrets = true

[tool.slimimage.images.distroless]
context = {hygiene!r}
dockerfile = "Dockerfile.distroless"
no_shell = true
no_package_manager = true
non_root = true
no_setuid = true
no_secrets = true
"""


@pytest.mark.parametrize("source", ["storage", "export"])
def test_values_are_masked_in_the_terminal_the_reports_and_the_layer_cache(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, leaky_contexts: tuple[Path, Path], source: str
) -> None:
    """One session with the declarative form, its layers read from the engine's storage or its
    export: the leaky image fails the same way, the ignored one and the distroless one pass every
    key; no secret reaches the terminal, the JSON and Markdown reports, the JUnit XML or the layer
    cache (which holds the findings, masked)."""
    monkeypatch.setenv("SLIMIMAGE_LAYER_SOURCE", source)
    pytester.makefile(
        ".toml",
        pyproject=DECLARED.format(
            leaky=str(leaky_contexts[0]), ignored=str(leaky_contexts[1]), hygiene=str(HYGIENE), deploy=SECRETS["deploy"]
        ),
    )
    result = pytester.runpytest_subprocess(
        "--slimimage-require-engine",
        "-rA",
        "--slimimage-report=report.json",
        "--slimimage-markdown=summary.md",
        "--junitxml=junit.xml",
    )
    expected = {("FAILED", "pyproject.toml::leaky::no_secrets"), ("PASSED", "pyproject.toml::ignored::no_secrets")}
    expected |= {("PASSED", f"pyproject.toml::distroless::{check}") for check in FIVE}
    assert outcomes(result) == expected, result.stdout.str()
    message = plain_error(block(result, "leaky::no_secrets"), "pyproject.toml", "DeclaredCheckFailed")
    assert message.splitlines()[0] == (
        "leaky: no_secrets: found 11 secret(s) in 1 layer(s), 2 of them deleted by a later layer but still shipped,"
        " 1 in the image config"
    )
    outputs = {
        "terminal": result.stdout.str() + result.stderr.str(),
        "report.json": (pytester.path / "report.json").read_text(),
        "summary.md": (pytester.path / "summary.md").read_text(),
        "junit.xml": (pytester.path / "junit.xml").read_text(),
        "layer cache": _cache_texts(pytester.path / ".pytest_cache" / "d" / "slimimage-layers"),
    }
    assert "AWS access key id" in outputs["layer cache"]  # the findings are cached with the layer
    for where, text in outputs.items():
        for name, secret in SECRETS.items():
            assert secret not in text, (where, name)
