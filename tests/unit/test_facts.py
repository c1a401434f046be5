"""Facts: the merged filesystem view (symlinks, paths), history entries, the image config."""

from __future__ import annotations

import pytest

from pytest_slimimage.facts import FileEntry, FileSystem, ImageConfig, ImageFacts, Layer, normalise


def fs_of(*entries: FileEntry) -> FileSystem:
    return FileSystem(entries={e.path: e for e in entries})


def f(path: str, mode: int = 0o755) -> FileEntry:
    return FileEntry(path, "file", 10, mode)


def d(path: str) -> FileEntry:
    return FileEntry(path, "dir", 0, 0o755)


def ln(path: str, target: str) -> FileEntry:
    return FileEntry(path, "symlink", 0, 0o777, target)


MERGED_USR = fs_of(
    d("/usr"),
    d("/usr/bin"),
    d("/usr/lib"),
    f("/usr/bin/gcc-12"),
    ln("/usr/bin/gcc", "gcc-12"),  # relative, same directory
    ln("/usr/bin/cc", "/etc/alternatives/cc"),  # absolute
    d("/etc"),
    d("/etc/alternatives"),
    ln("/etc/alternatives/cc", "/usr/bin/gcc"),  # a chain of links
    ln("/bin", "usr/bin"),  # merged /usr: /bin is a link, relative to /
    ln("/lib", "usr/lib"),
    d("/usr/lib/gcc"),
    ln("/usr/lib/cpp", "../bin/gcc"),  # relative with ..
    ln("/opt", "/usr/lib/gcc"),  # a link to a directory
    ln("/loop1", "/loop2"),
    ln("/loop2", "loop1"),
    ln("/self", "self"),
    ln("/dangling", "/nowhere"),
)


@pytest.mark.parametrize(
    ("path", "reached"),
    [
        ("/usr/bin/gcc-12", "/usr/bin/gcc-12"),
        ("/usr/bin/gcc", "/usr/bin/gcc-12"),
        ("/usr/bin/cc", "/usr/bin/gcc-12"),
        ("/bin/gcc", "/usr/bin/gcc-12"),  # link in an intermediate component
        ("/bin/cc", "/usr/bin/gcc-12"),
        ("/usr/lib/cpp", "/usr/bin/gcc-12"),
        ("/lib/cpp", "/usr/bin/gcc-12"),  # intermediate link, then a relative link with ..
        ("/opt", "/usr/lib/gcc"),
        ("bin//gcc/", "/usr/bin/gcc-12"),
        ("/", "/"),
    ],
)
def test_resolve(path: str, reached: str) -> None:
    entry = MERGED_USR.resolve(path)
    assert entry is not None
    assert entry.path == reached


@pytest.mark.parametrize("path", ["/loop1", "/loop2/x", "/self", "/dangling", "/usr/bin/missing", "/bin/missing"])
def test_resolve_unreachable_is_none(path: str) -> None:
    assert MERGED_USR.resolve(path) is None


def test_resolve_honours_max_links() -> None:
    chain = fs_of(f("/target"), ln("/a", "/b"), ln("/b", "/c"), ln("/c", "/target"))
    reached = chain.resolve("/a")
    assert reached is not None
    assert reached.path == "/target"
    assert chain.resolve("/a", max_links=2) is None
    assert chain.resolve("/a", max_links=3) is not None


def test_get_contains_len_iter() -> None:
    fs = fs_of(d("/usr"), f("/usr/x"))
    assert "/usr/x" in fs
    assert "usr/x" not in fs  # membership takes normalised paths
    got = fs.get("./usr/x")
    assert got is not None
    assert got.path == "/usr/x"
    assert fs.get("/usr/y") is None
    assert len(fs) == 2
    assert sorted(e.path for e in fs) == ["/usr", "/usr/x"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("./usr/bin/gcc", "/usr/bin/gcc"),
        ("usr/bin/gcc/", "/usr/bin/gcc"),
        ("/usr//bin/gcc", "/usr/bin/gcc"),
        ("//usr/bin", "/usr/bin"),
        ("././etc", "/etc"),
        ("/usr/lib/../bin", "/usr/bin"),
        ("", "/"),
        (".", "/"),
        ("./", "/"),
        ("/", "/"),
        ("usr/", "/usr"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("kind", "mode", "executable"),
    [("file", 0o755, True), ("file", 0o644, False), ("file", 0o744, True), ("file", 0o701, True),
     ("hardlink", 0o755, True), ("dir", 0o755, False), ("symlink", 0o777, False)],
)  # fmt: skip
def test_executable(kind: str, mode: int, executable: bool) -> None:
    assert FileEntry("/x", kind, 0, mode).executable is executable


@pytest.mark.parametrize(
    ("created_by", "instruction"),
    [
        ('/bin/sh -c #(nop)  CMD ["x"]', 'CMD ["x"]'),
        ("/bin/sh -c #(nop) WORKDIR /app", "WORKDIR /app"),
        ("/bin/sh -c #(nop) COPY file:5d1a in /hello ", "COPY file:5d1a in /hello"),
        ("/bin/sh -c apt-get update && apt-get install -y gcc", "RUN apt-get update && apt-get install -y gcc"),
        ("/bin/sh -c apt-get   install\n   -y gcc", "RUN apt-get install -y gcc"),
        ("|1 A=b /bin/sh -c make", "RUN make"),
        ("|2 A=b C=d /bin/sh -c make install", "RUN make install"),
        ("RUN /bin/sh -c go build . # buildkit", "RUN go build ."),
        ("RUN |1 X=1 /bin/sh -c echo $X > /z # buildkit", "RUN echo $X > /z"),
        ("RUN |2 A=1 B=2 make # buildkit", "RUN make"),  # exec form: no shell
        ("COPY /hello /hello # buildkit", "COPY /hello /hello"),
        ("ADD x.tar / # buildkit", "ADD x.tar /"),
        ("", "(imported layer, no instruction recorded)"),
        ("   ", "(imported layer, no instruction recorded)"),
    ],
)
def test_layer_instruction(created_by: str, instruction: str) -> None:
    assert Layer(created_by, 0, True).instruction == instruction


def test_image_config_from_inspect() -> None:
    attrs = {
        "Id": "sha256:abc",
        "Architecture": "arm64",
        "Os": "linux",
        "Config": {
            "Cmd": ["./hello", "--flag"],
            "Entrypoint": ["/tini", "--"],
            "User": "1000:1000",
            "WorkingDir": "/app",
            "Env": ["PATH=/usr/bin:/bin", "EMPTY=", "JOINED=a=b", "BARE"],
            "Labels": {"org.opencontainers.image.title": "hello"},
        },
    }
    config = ImageConfig.from_inspect(attrs)
    assert config.cmd == ("./hello", "--flag")
    assert config.entrypoint == ("/tini", "--")
    assert config.user == "1000:1000"
    assert config.workdir == "/app"
    assert config.env == {"PATH": "/usr/bin:/bin", "EMPTY": "", "JOINED": "a=b", "BARE": ""}
    assert config.labels == {"org.opencontainers.image.title": "hello"}
    assert (config.architecture, config.os) == ("arm64", "linux")
    assert config.argv == ("/tini", "--", "./hello", "--flag")


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"Config": None},
        {"Config": {"Cmd": None, "Entrypoint": None, "Env": None, "Labels": None, "User": None}},
        {"Config": {"Cmd": [], "Entrypoint": []}},
    ],
)
def test_image_config_from_sparse_inspect(attrs: dict[str, object]) -> None:
    config = ImageConfig.from_inspect(attrs)
    assert config == ImageConfig()
    assert config.cmd is None
    assert config.entrypoint is None
    assert config.argv == ()


def test_largest_layers_skip_empty_and_sort_by_size() -> None:
    layers = (Layer("a", 10, False), Layer("b", 0, True), Layer("c", 300, False), Layer("d", 20, False))
    facts = ImageFacts("img", "sha256:1", 330, ImageConfig(), layers)
    assert [la.created_by for la in facts.largest_layers] == ["c", "d", "a"]
