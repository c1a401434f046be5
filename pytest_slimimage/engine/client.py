"""The one module that talks to the Docker engine: docker-py for builds, metadata and image
export, testcontainers' client for container runs. Thin: it turns engine answers into facts
and engine failures into :class:`SlimImageError` s; every verdict is made elsewhere.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests.exceptions

from pytest_slimimage.analysis.layers import (
    LayerIndex,
    LayerMismatch,
    StorageMismatch,
    chain_ids,
    index_overlay_dir,
    index_saved_image,
    index_tar_split,
    keeps_content,
    stream_from_chunks,
)
from pytest_slimimage.errors import EngineUnavailable, ImageBuildError, SlimImageError
from pytest_slimimage.facts import Layer, RunLimits, RunResult
from pytest_slimimage.labels import LABEL_SESSION

if TYPE_CHECKING:
    from pytest_slimimage.analysis.layercache import LayerCache


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NO_COMMAND = re.compile(r"no command specified", re.I)
"""The engine's answer to creating a container from an image with neither CMD nor ENTRYPOINT."""


def _describe_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class Engine:
    """A connection to one Docker engine (``DOCKER_HOST`` honoured)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self._tc: Any = None
        self._arch: str | None = None

    @classmethod
    def connect(cls, timeout: float = 10.0) -> Engine:
        """Connect and ping; :class:`EngineUnavailable` says where it looked and why it failed."""
        try:
            client = docker.from_env(timeout=int(timeout))
            client.ping()
        except docker.errors.DockerException as exc:
            reason = str(exc).split(" (Caused by", 1)[0]
            raise EngineUnavailable(
                f"no Docker engine answers at {_describe_host()}: {reason}."
                " Start one (bash scripts/engine-up.sh does it on Debian) or set DOCKER_HOST."
            ) from None
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(f"no Docker engine answers at {_describe_host()}: {exc}") from None
        return cls(client)

    @property
    def arch(self) -> str | None:
        """The engine's architecture as images name it (``amd64``, ``arm64``); None if unknown."""
        if self._arch is None:
            try:
                self._arch = str(self.client.version().get("Arch") or "")
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                self._arch = ""
        return self._arch or None

    @property
    def server_version(self) -> str:
        return str(self.client.version().get("Version", "?"))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    # ------------------------------------------------------------------------------------ build
    def build(
        self,
        *,
        context: str,
        dockerfile: str,
        tag: str,
        labels: Mapping[str, str],
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        timeout: float | None = None,
        display: str | None = None,
    ) -> tuple[str, str]:
        """Build with the engine's legacy builder; return (image id, build log).

        A failed step raises :class:`ImageBuildError` with the step and the log's tail; messages
        name the Dockerfile as ``display`` (default: ``dockerfile``).
        """
        shown = display or dockerfile
        log: list[str] = []
        image_id = ""
        try:
            stream = self.client.api.build(
                path=context,
                dockerfile=dockerfile,
                tag=tag,
                labels=dict(labels),
                target=target,
                buildargs=dict(build_args or {}),
                rm=True,
                forcerm=True,
                decode=True,
                timeout=math.ceil(timeout) if timeout else None,
            )
            for chunk in stream:
                if "stream" in chunk:
                    line = _ANSI_ESCAPE.sub("", str(chunk["stream"]))  # the builder colours RUN's stderr
                    log.append(line)
                    match = re.match(r"Successfully built ([0-9a-f]+)", line)
                    if match:
                        image_id = match.group(1)
                if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
                if "error" in chunk:
                    text = "".join(log)
                    error = str(chunk["error"]).strip()
                    log.append(error + "\n")
                    raise ImageBuildError(
                        _build_failure(shown, error, text),
                        log="".join(log),
                        step=_last_step(text),
                    )
        except docker.errors.APIError as exc:
            text = "".join(log)
            raise ImageBuildError(
                _build_failure(shown, exc.explanation or str(exc), text), log=text, step=_last_step(text)
            ) from None
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            raise EngineUnavailable(f"the engine stopped answering during the build of {shown}: {exc}") from None
        if not image_id:
            text = "".join(log)
            raise ImageBuildError(_build_failure(shown, "the engine reported no image", text), log=text)
        return str(self.client.images.get(image_id).id), "".join(log)

    # ---------------------------------------------------------------------------------- inspect
    def inspect(self, image: str) -> dict[str, Any]:
        return dict(self.client.api.inspect_image(image))  # type: ignore[no-untyped-call]

    def history(self, image: str) -> list[Layer]:
        """History entries bottom to top (the engine lists them top first)."""
        entries = self.client.api.history(image)  # type: ignore[no-untyped-call]
        return [
            Layer(
                created_by=str(e.get("CreatedBy") or ""),
                size=int(e.get("Size") or 0),
                empty=not e.get("Size"),
            )
            for e in reversed(entries)
        ]

    def local_image(self, reference: str) -> dict[str, Any] | None:
        """Inspect data of a local image, or None (scratch and missing images alike)."""
        if reference == "scratch":
            return None
        try:
            return self.inspect(reference)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError:
            return None

    # ----------------------------------------------------------------------------- layer index
    _storage: Path | None = None
    _storage_checked = False

    def index_layers(
        self, image: str, *, cache: LayerCache | None = None, source: str | None = None
    ) -> list[LayerIndex]:
        """One index per filesystem layer of ``image``, bottom to top.

        Layers found in ``cache`` are taken from it; when all are, nothing else is read. The
        others come from the engine's overlay2 storage when this process can read it, else from
        one streaming pass over the image's export (in which the cached layers are drained, not
        parsed); new indexes are stored in ``cache``. ``source`` (default: the
        ``SLIMIMAGE_LAYER_SOURCE`` environment variable, else ``auto``) forces ``export`` or
        ``storage``; ``auto`` falls back from the storage to the export silently.
        """
        chosen = layer_source(source)
        diff_ids = self._diff_ids(image)
        if not diff_ids:  # no RootFS in the inspect data: nothing to key a cache or the storage by
            return self._export_layers(image, known=[])
        found: dict[str, LayerIndex] = {}
        if cache is not None:
            for digest in dict.fromkeys(diff_ids):
                hit = cache.get(digest)
                if hit is not None:
                    found[digest] = hit
        missing = [d for d in dict.fromkeys(diff_ids) if d not in found]
        if not missing:
            return [found[d] for d in diff_ids]
        new: dict[str, LayerIndex] = {}
        if chosen != "export":
            try:
                new = self._storage_layers(diff_ids, missing)
            except Exception as exc:  # unreadable, moved, mismatched: the export always works
                if chosen == "storage":
                    raise SlimImageError(
                        f"cannot read the layers of {image} from the engine's storage (layer source 'storage'): {exc}"
                    ) from None
                new = {}
        if any(d not in new for d in missing):
            exported = self._export_layers(image, known=list(found.values()))
            if [la.digest for la in exported] != diff_ids:  # pragma: no cover - the engine's diff ids are these hashes
                return exported
            new = {la.digest: la for la in exported if la.digest in missing}
        if cache is not None:
            for digest in missing:
                cache.put(new[digest])
        found.update(new)
        return [found[d] for d in diff_ids]

    def _diff_ids(self, image: str) -> list[str]:
        rootfs = self.inspect(image).get("RootFS")
        layers = rootfs.get("Layers") if isinstance(rootfs, dict) else None
        return [str(d) for d in layers] if isinstance(layers, list) else []

    def _export_layers(self, image: str, *, known: list[LayerIndex]) -> list[LayerIndex]:
        """The layers read in one streaming pass over ``docker save``, ``known`` ones drained unparsed."""
        try:
            return self._export(image, known)
        except LayerMismatch:  # a layer only looked like a known one: read everything again
            return self._export(image, [])

    def _export(self, image: str, known: list[LayerIndex]) -> list[LayerIndex]:
        chunks = self.client.api.get_image(image, chunk_size=1024 * 1024)
        with contextlib.closing(stream_from_chunks(chunks)) as stream:
            return index_saved_image(stream, want_content=keeps_content, known=known, trust_config=True).layers

    def storage_root(self) -> Path | None:
        """The engine's data root when this process can read its overlay2 layer store (a local
        engine, over a unix socket, with the ``overlay2`` driver); else None."""
        if not self._storage_checked:
            self._storage = self._find_storage()
            self._storage_checked = True
        return self._storage

    def _find_storage(self) -> Path | None:
        if self.client.api.base_url != "http+docker://localhost":  # tcp, ssh, npipe: another machine's disk
            return None
        try:
            info = self.client.info()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return None
        root = Path(str(info.get("DockerRootDir") or ""))
        if info.get("Driver") != "overlay2" or not root.is_absolute():
            return None
        needed = (root / "image" / "overlay2" / "layerdb" / "sha256", root / "overlay2")
        if not all(os.access(p, os.R_OK | os.X_OK) for p in needed):
            return None
        return root

    def _storage_layers(self, diff_ids: list[str], missing: list[str]) -> dict[str, LayerIndex]:
        """Index the ``missing`` layers from the overlay2 store: ``layerdb/sha256/<chain id>``
        names the layer (``diff``: its diff id, ``cache-id``: its directory under ``overlay2``)."""
        root = self.storage_root()
        if root is None:
            raise StorageMismatch("the engine's overlay2 storage is not readable from this process")
        out: dict[str, LayerIndex] = {}
        for digest, chain in zip(diff_ids, chain_ids(diff_ids), strict=True):
            if digest not in missing or digest in out:
                continue
            record = root / "image" / "overlay2" / "layerdb" / "sha256" / chain.removeprefix("sha256:")
            recorded = (record / "diff").read_text().strip()
            cache_id = (record / "cache-id").read_text().strip()
            if recorded != digest or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", cache_id):
                raise StorageMismatch(f"the layer store's record {record} is not layer {digest}")
            diff_dir = root / "overlay2" / cache_id / "diff"
            if not diff_dir.is_dir():
                raise StorageMismatch(f"layer {digest} has no directory {diff_dir}")
            tar_split = record / "tar-split.json.gz"
            if tar_split.is_file():
                out[digest] = index_tar_split(tar_split, diff_dir, digest=digest, want_content=keeps_content)
            else:
                out[digest] = index_overlay_dir(diff_dir, digest=digest, want_content=keeps_content)
        return out

    # -------------------------------------------------------------------------------------- run
    def _testcontainers(self) -> Any:
        if self._tc is None:
            from testcontainers.core.docker_client import DockerClient

            self._tc = DockerClient()
        return self._tc

    def run(
        self,
        image: str,
        *,
        args: Sequence[str] | None,
        timeout: float,
        name: str,
        labels: Mapping[str, str],
        limits: RunLimits,
        argv: Sequence[str],
    ) -> RunResult:
        """Run ``image`` as shipped (``args`` replaces CMD only), wait, collect output, remove it.

        The output is read from an attach stream opened before the container starts (the
        engine's log endpoint serves one frame per line, seconds for a chatty program); the
        engine's log is the fallback when that stream breaks.
        """
        started = time.monotonic()
        container = None
        output: _OutputPump | None = None

        def not_started(exc: docker.errors.APIError) -> RunResult:
            return RunResult(
                exit_code=-1,
                stdout="",
                stderr="",
                argv=tuple(argv),
                start_error=_start_error(exc),
                duration=time.monotonic() - started,
            )

        try:
            try:
                container = self._testcontainers().create(
                    image,
                    command=list(args) if args is not None else None,
                    labels=dict(labels),
                    name=name,
                    network=None,  # no testcontainers network guessing: the sandbox decides
                    network_mode="bridge" if limits.network else "none",
                    cap_drop=["ALL"],
                    security_opt=["no-new-privileges"],
                    mem_limit=limits.memory,
                    pids_limit=limits.pids,
                )
            except docker.errors.APIError as exc:
                if _NO_COMMAND.search(str(exc.explanation or exc)):  # the image has neither CMD nor ENTRYPOINT
                    return not_started(exc)
                raise
            output = _OutputPump(
                container.attach(stdout=True, stderr=True, stream=True, logs=False, demux=True), limits.output_cap
            )
            try:
                container.start()
            except docker.errors.APIError as exc:
                return not_started(exc)
            timed_out = False
            try:
                status = container.wait(timeout=timeout)
                exit_code = int(status.get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                timed_out = True
                with contextlib.suppress(docker.errors.APIError):
                    container.kill()
                exit_code = int(container.wait(timeout=30).get("StatusCode", -1))
            if output.finish(timeout=10.0):
                stdout, stderr, truncated = output.result()
            else:
                stdout, cut_out = _read_logs(container, limits.output_cap, stdout=True)
                stderr, cut_err = _read_logs(container, limits.output_cap, stdout=False)
                truncated = cut_out or cut_err
            return RunResult(
                exit_code=exit_code,
                stdout=stdout,
                stderr=stderr,
                timed_out=timed_out,
                argv=tuple(argv),
                truncated=truncated,
                duration=time.monotonic() - started,
            )
        except docker.errors.DockerException as exc:
            raise SlimImageError(f"the engine could not run {image}: {exc}") from None
        finally:
            if output is not None:
                output.close()
            if container is not None:
                with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                    container.remove(force=True, v=True)

    # ---------------------------------------------------------------------------------- cleanup
    def remove_containers(self, value: str, *, label: str = LABEL_SESSION) -> int:
        """Remove every container (running, exited or never started) with ``label=value``."""
        removed = 0
        for c in self.client.containers.list(all=True, filters={"label": f"{label}={value}"}):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
                removed += 1
        return removed

    def remove_image(self, reference: str) -> None:
        """Untag/remove ``reference`` without pruning its untagged parents (other builds' cache)."""
        with contextlib.suppress(docker.errors.ImageNotFound):
            self.client.api.remove_image(reference, force=False, noprune=True)

    def images_with_label(self, session: str) -> list[str]:
        found: list[str] = []
        for img in self.client.images.list(filters={"label": f"{LABEL_SESSION}={session}"}):
            found.extend(img.tags)
        return found


LAYER_SOURCE_ENV = "SLIMIMAGE_LAYER_SOURCE"
LAYER_SOURCES = ("auto", "export", "storage")
"""Where :meth:`Engine.index_layers` reads layers it has not cached: ``auto`` (the storage when
readable, else the export), ``export`` (always ``docker save``), ``storage`` (the overlay2
store, an error when unreadable)."""


def layer_source(value: str | None = None) -> str:
    """``value``, else ``$SLIMIMAGE_LAYER_SOURCE``, else ``auto``; anything else is an error."""
    chosen = (value if value is not None else os.environ.get(LAYER_SOURCE_ENV, "")).strip().lower() or "auto"
    if chosen not in LAYER_SOURCES:
        raise SlimImageError(f"{LAYER_SOURCE_ENV} must be one of {', '.join(LAYER_SOURCES)} (got {chosen!r})")
    return chosen


class _OutputPump:
    """Drains a container's demultiplexed attach stream in a thread, keeping the first ``cap``
    bytes of stdout and of stderr; the rest is read and dropped, so the program never blocks."""

    def __init__(self, stream: Any, cap: int) -> None:
        self._stream = stream
        self._cap = cap
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._truncated = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, name="slimimage-output", daemon=True)
        self._thread.start()

    def _keep(self, buffer: bytearray, chunk: bytes | None) -> None:
        if not chunk:
            return
        room = self._cap - len(buffer)
        if len(chunk) > room:
            self._truncated = True
        if room > 0:
            buffer += chunk[:room]

    def _pump(self) -> None:
        try:
            for out, err in self._stream:
                self._keep(self._stdout, out)
                self._keep(self._stderr, err)
        except Exception as exc:  # a broken stream (e.g. a read timeout): the caller reads the log instead
            self._error = exc

    def finish(self, timeout: float) -> bool:
        """Wait for the stream's end (the container has exited); False when it broke or hangs."""
        self._thread.join(timeout)
        return not self._thread.is_alive() and self._error is None

    def result(self) -> tuple[str, str, bool]:
        return self._stdout.decode("utf-8", "replace"), self._stderr.decode("utf-8", "replace"), self._truncated

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()


def _read_logs(container: Any, cap: int, *, stdout: bool) -> tuple[str, bool]:
    data = bytearray()
    truncated = False
    stream: Iterator[bytes] = container.logs(stdout=stdout, stderr=not stdout, stream=True, follow=False)
    for chunk in stream:
        room = cap - len(data)
        if room <= 0:
            truncated = True
            break
        data += chunk[:room]
        if len(chunk) > room:
            truncated = True
    return data.decode("utf-8", "replace"), truncated


def _start_error(exc: docker.errors.APIError) -> str:
    text = str(exc.explanation or exc)
    # "OCI runtime create failed: ... exec: "./hello": stat ./hello: no such file or directory: unknown"
    match = re.search(r"(exec[: ].*?)(?:: unknown)?$", text)
    return match.group(1) if match else text


def _last_step(log: str) -> str | None:
    steps = re.findall(r"^Step \d+/\d+ : .*$", log, re.M)
    return steps[-1] if steps else None


def _build_failure(dockerfile: str, error: str, log: str) -> str:
    step = _last_step(log)
    lines = [f"building {dockerfile} failed: {error}"]
    if step:
        lines.append(f"  failing step: {step}")
    tail_lines = [line for line in log.rstrip().splitlines() if line.strip()][-15:]
    if tail_lines:
        lines.append("  build log (last lines):")
        lines += [f"    | {line}" for line in tail_lines]
    return "\n".join(lines)
