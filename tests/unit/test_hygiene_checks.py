"""``no_shell``, ``no_package_manager``, ``non_root``, ``no_setuid`` and ``no_secrets`` over facts built
by hand (no engine): each one's pass headline and failure text, the layer and Dockerfile line its
evidence names, its allow-list and its value's validation."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_slimimage.analysis.layers import LayerIndex, merge_layers
from pytest_slimimage.analysis.secrets import collect_secrets
from pytest_slimimage.analysis.waste import compute_waste
from pytest_slimimage.checks.check import ParseContext
from pytest_slimimage.checks.no_package_manager import NO_PACKAGE_MANAGER, check_no_package_manager
from pytest_slimimage.checks.no_secrets import NO_SECRETS, check_no_secrets
from pytest_slimimage.checks.no_setuid import NO_SETUID, check_no_setuid
from pytest_slimimage.checks.no_shell import NO_SHELL, check_no_shell
from pytest_slimimage.checks.non_root import NON_ROOT, check_non_root
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.dockerfile.model import parse_dockerfile
from pytest_slimimage.facts import ElfInfo, FileEntry, ImageConfig, ImageFacts, Layer, SecretFinding

BUSYBOX = ElfInfo("amd64", 64, "exec", markers=("shell", "busybox"))

DOCKERFILE = """\
FROM busybox:latest
COPY app /app
RUN chmod 4755 /app/helper && echo done
RUN rm /root/.ssh/id_rsa
USER {user}
CMD ["/app/run"]
"""


def index(
    entries: Sequence[FileEntry] = (),
    *,
    whiteouts: Sequence[str] = (),
    contents: dict[str, bytes] | None = None,
    secrets: Sequence[SecretFinding] = (),
) -> LayerIndex:
    return LayerIndex(
        digest="sha256:" + "0" * 64,
        entries={e.path: e for e in entries},
        whiteouts=list(whiteouts),
        contents=contents or {},
        size=sum(e.size for e in entries if e.kind == "file"),
        secrets=list(secrets),
    )


def image(
    layers: Sequence[LayerIndex],
    history: Sequence[Layer],
    *,
    user: str = "",
    dockerfile: str | None = None,
    env: dict[str, str] | None = None,
) -> ImageFacts:
    return ImageFacts(
        name="app",
        id="sha256:" + "1" * 64,
        size=10_000,
        config=ImageConfig(cmd=("/app/run",), user=user, env=env or {}),
        layers=tuple(history),
        dockerfile=parse_dockerfile("Dockerfile", text=dockerfile) if dockerfile else None,
        filesystem=merge_layers(layers),
        waste=compute_waste(layers),
        secrets=collect_secrets(layers),
    )


KEY = SecretFinding(
    "ssh-private-key", "SSH private key", "/root/.ssh/id_rsa", 1, "-----BEGIN OPENSSH PRIVATE KEY----- ..."
)
BASE = index(
    [
        FileEntry("/bin", "dir", 0, 0o755),
        FileEntry("/bin/busybox", "file", 1_000_000, 0o755, elf=BUSYBOX),
        FileEntry("/bin/sh", "symlink", 0, 0o777, "busybox"),
        FileEntry("/bin/dpkg", "symlink", 0, 0o777, "busybox"),
        FileEntry("/root/.ssh/id_rsa", "file", 400, 0o600),
    ],
    secrets=[KEY],
)
APP = index(
    [
        FileEntry("/app", "dir", 0, 0o755),
        FileEntry("/app/run", "file", 5_000, 0o755, uid=1000, gid=1000),
        FileEntry("/app/helper", "file", 3_000, 0o755),
    ]
)
CHMOD = index([FileEntry("/app/helper", "file", 3_000, 0o4755, uid=0, gid=0)])
REMOVE = index(whiteouts=["/root/.ssh/id_rsa"])
HISTORY = (
    Layer("/bin/sh -c #(nop) COPY file:abc in /bin/busybox ", 1_000_400, False, from_base=True),
    Layer('/bin/sh -c #(nop)  CMD ["sh"]', 0, True, from_base=True),
    Layer("COPY app /app # buildkit", 8_000, False),
    Layer("RUN /bin/sh -c chmod 4755 /app/helper && echo done # buildkit", 3_000, False),
    Layer("RUN /bin/sh -c rm /root/.ssh/id_rsa # buildkit", 0, False),
    Layer("USER {user}", 0, True),
    Layer('CMD ["/app/run"]', 0, True),
)


def facts(user: str = "", *, env: dict[str, str] | None = None, passwd: bytes | None = None) -> ImageFacts:
    layers = [BASE, APP, CHMOD, REMOVE]
    if passwd is not None:
        layers.append(index([FileEntry("/etc/passwd", "file", len(passwd), 0o644)], contents={"/etc/passwd": passwd}))
    history = [la if la.created_by != "USER {user}" else Layer(f"USER {user}", 0, True) for la in HISTORY]
    if not user:
        history = [la for la in history if not la.created_by.startswith("USER")]
    text = DOCKERFILE.format(user=user) if user else DOCKERFILE.replace("USER {user}\n", "")
    if passwd is not None:
        history.insert(-1, Layer("COPY passwd /etc/passwd # buildkit", len(passwd), False))
    return image(layers, history, user=user, dockerfile=text, env=env)


def lines(result: CheckResult) -> list[str]:
    return result.message().splitlines()


BUSYBOX_LAYER = "layer 1: COPY file:abc in /bin/busybox (base busybox:latest)"


# --------------------------------------------------------------------------------------- no_shell
def test_no_shell_fails_with_the_program_its_links_and_its_layer() -> None:
    result = check_no_shell(facts())
    assert not result.passed
    assert lines(result) == [
        "app: no_shell: found 1 shell(s) (busybox)",
        "  /bin/busybox (busybox, a multi-call binary with a shell applet; as /bin/sh)",
        f"    written by {BUSYBOX_LAYER}",
        "  hint: ship the program alone: a final stage FROM scratch or a distroless base with only what it needs"
        " (COPY --from=<build>), with an exec-form ENTRYPOINT; or allow=[...] the shell you keep on purpose",
    ]
    assert result.details["found"] == [{"path": "/bin/busybox", "name": "busybox", "by": "name", "links": ["/bin/sh"]}]


def test_no_shell_passes_when_there_is_none_or_it_is_allowed() -> None:
    fs_facts = image([APP], [Layer("COPY app /app", 8_000, False)])
    assert check_no_shell(fs_facts).headline == "app: no_shell: no shell among 3 paths"
    assert check_no_shell(facts(), ["busybox"]).passed
    assert check_no_shell(facts(), "sh").passed  # a str is one pattern


# ----------------------------------------------------------------------------- no_package_manager
def test_no_package_manager_lists_os_and_language_apart() -> None:
    pip = index([FileEntry("/usr/local/bin/pip3", "file", 200, 0o755)])
    result = check_no_package_manager(
        image([BASE, pip], [HISTORY[0], Layer("RUN /bin/sh -c python -m ensurepip # buildkit", 200, False)])
    )
    assert lines(result) == [
        "app: no_package_manager: found 1 OS package manager (dpkg) and 1 language installer (pip3)",
        "  OS package managers:",
        "    /bin/dpkg -> /bin/busybox  (layer 1: COPY file:abc in /bin/busybox (base image))",
        "  language installers:",
        "    /usr/local/bin/pip3  (layer 2: RUN python -m ensurepip (build))",
        "  hint: install packages in a build stage and COPY --from=<build> only what the program needs into a"
        " scratch or distroless final stage; or allow=[...] the managers you keep on purpose",
    ]
    only_pip = check_no_package_manager(image([pip], [HISTORY[2]]))
    assert only_pip.headline == "app: no_package_manager: found no OS package manager and 1 language installer (pip3)"
    assert only_pip.hint.startswith("install dependencies in a build stage (pip install --target, npm ci)")
    assert check_no_package_manager(image([APP], [HISTORY[2]])).passed
    assert check_no_package_manager(facts(), ["dpkg"]).passed


# --------------------------------------------------------------------------------------- non_root
def test_non_root_unset_is_root() -> None:
    result = check_non_root(facts(""))
    assert lines(result) == [
        "app: non_root: runs as root (USER unset)",
        "  no USER in the image config (nor in its base): the engine runs it as root, uid 0",
        "  hint: add USER <uid> to the final stage, after the steps that need root: a numeric uid needs no"
        " /etc/passwd entry (USER 65534 is nobody's)",
    ]


@pytest.mark.parametrize("user", ["0", "0:0", "0:1000"])
def test_non_root_uid_0_fails_with_its_dockerfile_line(user: str) -> None:
    result = check_non_root(facts(user))
    assert lines(result)[:2] == [
        f"app: non_root: runs as root (USER {user} is uid 0 (numeric))",
        f"  USER {user} (Dockerfile line 5)",
    ]


def test_non_root_names_resolve_through_the_images_passwd() -> None:
    passwd = b"root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\napp:x:10001:10001::/app:/sbin/nologin\n"
    assert lines(check_non_root(facts("root", passwd=passwd)))[0] == (
        "app: non_root: runs as root (USER root is uid 0 (/etc/passwd line 1))"
    )
    assert lines(check_non_root(facts("toor", passwd=passwd)))[0] == (
        "app: non_root: runs as root (USER toor is uid 0 (/etc/passwd line 2))"
    )
    passed = check_non_root(facts("app", passwd=passwd))
    assert passed.passed and passed.headline == "app: non_root: runs as uid 10001 (USER app, /etc/passwd line 3)"
    assert passed.details == {"user": "app", "uid": 10001, "gid": 10001, "how": "/etc/passwd line 3", "problem": ""}


def test_non_root_a_name_the_image_lacks_cannot_start() -> None:
    result = check_non_root(facts("nobody"))
    assert lines(result) == [
        "app: non_root: USER nobody cannot start: unable to find user nobody: the image has no /etc/passwd",
        "  USER nobody (Dockerfile line 5)",
        "  the engine refuses to start a container whose user the image does not define",
        "  hint: add the user to the image's /etc/passwd (and /etc/group), or use a numeric uid: a numeric uid"
        " needs no /etc/passwd entry (USER 65534 is nobody's)",
    ]


def test_non_root_a_numeric_uid_needs_no_passwd() -> None:
    passed = check_non_root(facts("65534"))
    assert passed.headline == (
        "app: non_root: runs as uid 65534 (USER 65534, numeric), group 0 (root's group: no passwd entry gives it"
        " another)"
    )
    assert check_non_root(facts("1000:1000")).headline == "app: non_root: runs as uid 1000 (USER 1000:1000, numeric)"


# -------------------------------------------------------------------------------------- no_setuid
def test_no_setuid_lists_mode_owner_and_layer() -> None:
    result = check_no_setuid(facts())
    assert lines(result) == [
        "app: no_setuid: found 1 setuid/setgid file(s)",
        "  -rwsr-xr-x 4755 0:0  /app/helper  (setuid)",
        "    written by layer 3: RUN chmod 4755 /app/helper && echo done (Dockerfile line 3)",
        "  hint: clear the bits in the step that installs the file (chmod u-s,g-s, or COPY --chmod=755), or leave"
        " the program out; a container that needs no privilege change also runs with no-new-privileges; or"
        " allow=[...] the files you keep on purpose",
    ]
    assert result.details["found"] == [{"path": "/app/helper", "mode": "4755", "uid": 0, "gid": 0}]


def test_no_setuid_setgid_and_directories() -> None:
    layer = index(
        [
            FileEntry("/usr/bin/wall", "file", 10, 0o2755, uid=0, gid=5),
            FileEntry("/var/mail", "dir", 0, 0o2775),  # a setgid directory only passes its group on
            FileEntry("/usr/bin/both", "file", 10, 0o6755),
        ]
    )
    result = check_no_setuid(image([layer], [Layer("COPY . /", 20, False)]))
    assert [line for line in lines(result) if not line.startswith(("    ", "  hint"))] == [
        "app: no_setuid: found 2 setuid/setgid file(s)",
        "  -rwsr-sr-x 6755 0:0  /usr/bin/both  (setuid and setgid)",
        "  -rwxr-sr-x 2755 0:5  /usr/bin/wall  (setgid)",
    ]
    assert check_no_setuid(image([layer], [Layer("COPY . /", 20, False)]), ["/usr/bin/*"]).passed
    assert (
        check_no_setuid(image([APP], [HISTORY[2]])).headline == "app: no_setuid: no setuid or setgid file among 3 paths"
    )


# ------------------------------------------------------------------------------------- no_secrets
def test_no_secrets_a_deleted_key_still_ships() -> None:
    result = check_no_secrets(facts())
    assert lines(result) == [
        "app: no_secrets: found 1 secret(s) in 1 layer(s), 1 of them deleted by a later layer but still shipped",
        "  /root/.ssh/id_rsa:1  SSH private key: -----BEGIN OPENSSH PRIVATE KEY----- ...",
        f"    added in {BUSYBOX_LAYER}",
        "    deleted in layer 4: RUN rm /root/.ssh/id_rsa (Dockerfile line 4), still shipped",
        "  hint: a file deleted by a later layer still ships in the layer that added it: pass secrets to the build"
        " with RUN --mount=type=secret (BuildKit), or use them in a build stage that is not the final one; keep them"
        " out of the context (.dockerignore); rotate any credential an image was pushed with, or allow=[...] test"
        " keys kept on purpose",
    ]
    assert result.details["found"] == [
        {
            "rule": "ssh-private-key",
            "kind": "SSH private key",
            "path": "/root/.ssh/id_rsa",
            "line": 1,
            "preview": "-----BEGIN OPENSSH PRIVATE KEY----- ...",
            "layer": 0,
            "ended": "deleted",
            "ended_in": 3,
        }
    ]


def test_no_secrets_in_the_config_masked_even_in_the_instruction() -> None:
    key = "AK" + "IA" + "QWERTYUIOPASDFGH"
    token = "gh" + "p_" + "a1" * 18
    history = [
        Layer("COPY app /app # buildkit", 8_000, False),
        Layer(f"RUN |1 TOKEN={token} /bin/sh -c echo {key} >/app/key # buildkit", 20, False),
    ]
    layers = [
        APP,
        index(
            [FileEntry("/app/key", "file", 21, 0o644)],
            secrets=[SecretFinding("aws-access-key-id", "AWS access key id", "/app/key", 1, "AKIA*************FGH")],
        ),
    ]
    result = check_no_secrets(image(layers, history, env={"AWS_ACCESS_KEY_ID": key}))
    text = result.message()
    assert key not in text and token not in text
    assert lines(result)[:6] == [
        "app: no_secrets: found 4 secret(s) in 1 layer(s), 3 in the image config",
        "  /app/key:1  AWS access key id: AKIA*************FGH",
        "    added in layer 2: RUN echo AKIA*************FGH >/app/key (build)",
        "  ENV AWS_ACCESS_KEY_ID (image config)  AWS access key id: AKIA*************FGH",
        "  history of RUN echo AKIA*************FGH >/app/key (build)  GitHub token: ghp_*****************************"
        "****" + token[-3:],
        "  history of RUN echo AKIA*************FGH >/app/key (build)  AWS access key id: AKIA*************FGH",
    ]
    assert "ENV and build args (the image config records them)" in result.hint


def test_no_secrets_passes_and_allows_globs_and_rules() -> None:
    assert (
        check_no_secrets(image([APP], [HISTORY[2]])).headline
        == "app: no_secrets: no secret in its 1 layer(s) or its config"
    )
    assert check_no_secrets(facts(), ["/root/.ssh/*"]).passed
    assert check_no_secrets(facts(), ["id_rsa"]).passed
    assert check_no_secrets(facts(), ["ssh-private-key"]).passed


# ---------------------------------------------------------------------------- needs and values
@pytest.mark.parametrize("check", [check_no_shell, check_no_package_manager, check_no_setuid, check_no_secrets])
def test_the_file_checks_need_the_layers(check: object) -> None:
    bare = ImageFacts("app", "sha256:" + "1" * 64, 1, ImageConfig())
    with pytest.raises(ValueError, match=r"needs the (filesystem|layers) of app, which (was|were) not indexed"):
        check(bare, ())  # type: ignore[operator]


@pytest.mark.parametrize("check", [NO_SHELL, NO_PACKAGE_MANAGER, NO_SETUID, NO_SECRETS])
def test_allow_list_values(check: object) -> None:
    from pytest_slimimage.checks.check import Check

    assert isinstance(check, Check)
    context = ParseContext()
    assert check.expectation(True, context) == ()
    assert check.expectation(False, context) is None
    assert check.expectation(["a", "b*"], context) == ("a", "b*")
    assert check.expectation({"allow": ["x"]}, context) == ("x",)
    with pytest.raises(ValueError, match=rf"^{check.name} expects True, False, a list of allowed .*, got 3$"):
        check.expectation(3, context)


def test_non_root_value() -> None:
    assert NON_ROOT.expectation(True, ParseContext()) is True
    assert NON_ROOT.expectation(False, ParseContext()) is None
    with pytest.raises(ValueError, match=r"expects True or False, got 'yes'"):
        NON_ROOT.expectation("yes", ParseContext())
