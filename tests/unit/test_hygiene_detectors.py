"""The pure detectors behind ``no_shell``, ``no_package_manager`` and ``non_root`` (no engine): shells
by name, link and content; package managers by name, link, module and record; ``USER`` resolved as
the engine resolves it; owners named."""

from __future__ import annotations

import pytest

from pytest_slimimage.analysis.packagemanagers import LANGUAGE, OS, find_package_managers
from pytest_slimimage.analysis.shells import SHELL_NAME, find_shells
from pytest_slimimage.analysis.toolchains import APK_INSTALLED, DPKG_STATUS
from pytest_slimimage.analysis.users import effective_user, owner, parse_group, parse_passwd
from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem

BUSYBOX = ElfInfo("amd64", 64, "exec", markers=("shell", "busybox"))
BASH = ElfInfo("amd64", 64, "dyn", "/lib64/ld-linux-x86-64.so.2", ("libc.so.6",), markers=("shell",))
PLAIN = ElfInfo("amd64", 64, "dyn", "/lib64/ld-linux-x86-64.so.2", ("libc.so.6",))


def exe(path: str, elf: ElfInfo | None = PLAIN, layer: int = 0) -> FileEntry:
    return FileEntry(path, "file", 1000, 0o755, elf=elf, layer=layer)


def link(path: str, target: str) -> FileEntry:
    return FileEntry(path, "symlink", 0, 0o777, target)


def fs_of(*entries: FileEntry, contents: dict[str, bytes] | None = None) -> FileSystem:
    return FileSystem(entries={e.path: e for e in entries}, contents=contents or {})


def shells(fs: FileSystem, allow: tuple[str, ...] = ()) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(s.path, s.name, s.by, s.links) for s in find_shells(fs, allow)]


# ----------------------------------------------------------------------------------------- shells
@pytest.mark.parametrize("name", ["sh", "bash", "rbash", "dash", "ash", "zsh", "zsh5", "ksh", "ksh93", "mksh", "fish"])
def test_shell_names(name: str) -> None:
    assert SHELL_NAME.match(name)
    assert shells(fs_of(exe(f"/bin/{name}", None))) == [(f"/bin/{name}", name, "name", ())]


@pytest.mark.parametrize("name", ["ssh", "bashbug", "dash.conf", "shasum", "flash", "kshell", "sh.distrib.txt"])
def test_names_that_are_not_shells(name: str) -> None:
    assert not SHELL_NAME.match(name)
    assert shells(fs_of(exe(f"/usr/bin/{name}", None))) == []


def test_busybox_with_its_applet_links() -> None:
    fs = fs_of(
        exe("/bin/busybox", BUSYBOX),
        link("/bin/sh", "busybox"),
        link("/bin/ash", "/bin/busybox"),
        link("/bin/ls", "busybox"),  # runs ls, not a shell
        link("/bin/cat", "busybox"),
    )
    [shell] = find_shells(fs)
    assert (shell.path, shell.name, shell.by, shell.links, shell.multicall) == (
        "/bin/busybox",
        "busybox",
        "name",
        ("/bin/ash", "/bin/sh"),
        True,
    )
    assert shell.describe() == "/bin/busybox (busybox, a multi-call binary with a shell applet; as /bin/ash, /bin/sh)"


def test_busybox_installed_with_hard_links() -> None:
    fs = fs_of(
        exe("/bin/busybox", BUSYBOX),
        FileEntry("/bin/sh", "hardlink", 0, 0o755, "/bin/busybox", elf=BUSYBOX),
        FileEntry("/bin/ls", "hardlink", 0, 0o755, "/bin/busybox", elf=BUSYBOX),
    )
    assert shells(fs) == [("/bin/busybox", "busybox", "name", ("/bin/sh",))]


def test_a_renamed_busybox_and_a_renamed_bash_by_content() -> None:
    fs = fs_of(exe("/usr/local/bin/tool", BUSYBOX), exe("/opt/x/run", BASH))
    assert shells(fs) == [
        ("/opt/x/run", "run", "content", ()),
        ("/usr/local/bin/tool", "busybox", "content", ()),
    ]
    assert find_shells(fs)[1].describe() == "/usr/local/bin/tool (busybox, a shell by its content)"


def test_any_link_to_a_dedicated_shell_runs_it() -> None:
    fs = fs_of(exe("/bin/bash", BASH), link("/bin/sh", "bash"), link("/usr/local/bin/run", "/bin/bash"))
    assert shells(fs) == [("/bin/bash", "bash", "name", ("/bin/sh", "/usr/local/bin/run"))]


def test_a_link_named_sh_to_a_multicall_binary_without_a_shell_marker() -> None:
    """toybox's sh is not known from its bytes: a link that names it ``sh`` makes it one."""
    fs = fs_of(exe("/bin/toybox", PLAIN), link("/bin/sh", "toybox"), link("/bin/ls", "toybox"))
    assert shells(fs) == [("/bin/toybox", "toybox", "link", ("/bin/sh",))]
    assert find_shells(fs)[0].describe() == "/bin/toybox (toybox, run as a shell by its links; as /bin/sh)"


def test_dangling_links_data_files_and_scripts_are_not_shells() -> None:
    fs = fs_of(
        link("/bin/sh", "/bin/dash"),  # nothing there
        FileEntry("/usr/share/bash-completion/bash", "file", 10, 0o644),  # not executable
        FileEntry("/etc/sh", "dir", 0, 0o755),
        FileEntry("/app/run.sh", "file", 20, 0o755, shebang="/bin/sh"),  # a script needs a shell, is none
    )
    assert shells(fs) == []


def test_allow_by_name_path_or_link() -> None:
    fs = fs_of(exe("/bin/busybox", BUSYBOX), link("/bin/sh", "busybox"), exe("/bin/bash", BASH))
    assert [s.path for s in find_shells(fs, ("busybox",))] == ["/bin/bash"]
    assert [s.path for s in find_shells(fs, ("/bin/sh",))] == ["/bin/bash"]
    assert find_shells(fs, ("*",)) == ()


# ------------------------------------------------------------------------------- package managers
def managers(fs: FileSystem, allow: tuple[str, ...] = ()) -> list[tuple[str, str, str, str]]:
    return [(m.family, m.kind, m.name, str(m)) for m in find_package_managers(fs, allow)]


@pytest.mark.parametrize(
    "name", ["apt", "apt-get", "dpkg", "apk", "rpm", "yum", "dnf", "microdnf", "zypper", "pacman", "apk.static"]
)
def test_os_package_managers_by_name(name: str) -> None:
    assert managers(fs_of(exe(f"/usr/bin/{name}"))) == [(OS, "file", name, f"/usr/bin/{name}")]


@pytest.mark.parametrize("name", ["pip", "pip3", "pip3.11", "npm", "gem", "yarn", "pnpm"])
def test_language_installers_by_name(name: str) -> None:
    assert managers(fs_of(exe(f"/usr/local/bin/{name}"))) == [(LANGUAGE, "file", name, f"/usr/local/bin/{name}")]


@pytest.mark.parametrize("name", ["apt-key", "dpkg-deb", "rpm2cpio", "pipx-ish", "npx", "gems", "aptly", "pip.conf"])
def test_near_names_are_not_package_managers(name: str) -> None:
    assert managers(fs_of(exe(f"/usr/bin/{name}"))) == []


def test_busyboxs_applet_links_and_the_module_a_language_runs() -> None:
    fs = fs_of(
        exe("/bin/busybox", BUSYBOX),
        link("/bin/dpkg", "busybox"),
        FileEntry("/usr/share/man/man8/dpkg.8.gz", "file", 10, 0o644),  # not a program
        FileEntry("/usr/local/lib/python3.12/site-packages/pip/__init__.py", "file", 10, 0o644),
        FileEntry("/usr/lib/node_modules/npm/package.json", "file", 10, 0o644),
    )
    assert managers(fs) == [
        (OS, "file", "dpkg", "/bin/dpkg -> /bin/busybox"),
        (LANGUAGE, "module", "npm", "/usr/lib/node_modules/npm/package.json (npm: the installer's module)"),
        (
            LANGUAGE,
            "module",
            "pip",
            "/usr/local/lib/python3.12/site-packages/pip/__init__.py (python -m pip: the installer's module)",
        ),
    ]


def test_package_records() -> None:
    status = (
        b"Package: apt\nStatus: install ok installed\n\nPackage: python3-pip\nStatus: install ok installed\n\n"
        b"Package: dpkg\nStatus: deinstall ok config-files\n\nPackage: libapt-pkg6.0\nStatus: install ok installed\n"
    )
    fs = fs_of(contents={DPKG_STATUS: status, APK_INSTALLED: b"P:apk-tools\nV:2.14\n\nP:musl\n"})
    assert managers(fs) == [
        (OS, "package", "apk-tools", "package apk-tools (installed, per /lib/apk/db/installed)"),
        (OS, "package", "apt", "package apt (installed, per /var/lib/dpkg/status)"),
        (LANGUAGE, "package", "python3-pip", "package python3-pip (installed, per /var/lib/dpkg/status)"),
    ]


def test_allow_names_paths_or_a_whole_family() -> None:
    fs = fs_of(exe("/usr/bin/apt-get"), exe("/usr/bin/dpkg"), exe("/usr/local/bin/pip3"))
    assert [m.name for m in find_package_managers(fs, ("apt*",))] == ["dpkg", "pip3"]
    assert [m.name for m in find_package_managers(fs, ("language",))] == ["apt-get", "dpkg"]
    assert [m.name for m in find_package_managers(fs, ("/usr/bin/*",))] == ["pip3"]


# ------------------------------------------------------------------------------------------ users
PASSWD = b"root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/sbin/nologin\nbad line\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\nstaff:x:50:app\n"
WITH_FILES = fs_of(contents={"/etc/passwd": PASSWD, "/etc/group": GROUP})
WITHOUT = fs_of()


def test_parse_passwd_and_group() -> None:
    accounts = parse_passwd(PASSWD)
    assert sorted(accounts) == ["nobody", "root", "toor"]
    assert (accounts["nobody"].uid, accounts["nobody"].gid, accounts["nobody"].line) == (65534, 65534, 3)
    assert parse_group(GROUP) == {"root": 0, "nogroup": 65534, "staff": 50}


@pytest.mark.parametrize(
    ("spec", "fs", "uid", "gid", "problem"),
    [
        ("", WITHOUT, 0, 0, ""),
        ("0", WITHOUT, 0, 0, ""),
        ("0:0", WITHOUT, 0, 0, ""),
        ("root", WITH_FILES, 0, 0, ""),
        ("toor", WITH_FILES, 0, 0, ""),  # another name for uid 0
        ("0:1000", WITHOUT, 0, 1000, ""),
        ("nobody", WITH_FILES, 65534, 65534, ""),
        ("nobody:staff", WITH_FILES, 65534, 50, ""),
        ("65534", WITHOUT, 65534, 0, ""),  # numeric, no passwd: the engine gives group 0
        ("65534", WITH_FILES, 65534, 65534, ""),  # numeric, in passwd: its group
        ("1000:1000", WITHOUT, 1000, 1000, ""),
        ("nobody", WITHOUT, None, None, "unable to find user nobody: the image has no /etc/passwd"),
        ("root", WITHOUT, None, None, "unable to find user root: the image has no /etc/passwd"),
        ("app", WITH_FILES, None, None, "unable to find user app: no matching entries in /etc/passwd"),
        ("nobody:wheel", WITH_FILES, 65534, None, "unable to find group wheel: no matching entries in /etc/group"),
        ("1000:users", WITHOUT, 1000, None, "unable to find group users: the image has no /etc/group"),
    ],
)
def test_effective_user(spec: str, fs: FileSystem, uid: int | None, gid: int | None, problem: str) -> None:
    user = effective_user(spec, fs)
    assert (user.uid, user.gid, user.problem) == (uid, gid, problem)


def test_owner_names() -> None:
    assert owner(0, 0, WITH_FILES) == "root:root (0:0)"
    assert owner(65534, 50, WITH_FILES) == "nobody:staff (65534:50)"
    assert owner(1000, 1000, WITH_FILES) == "1000:1000"
    assert owner(0, 0, WITHOUT) == "0:0"
