"""Read safetensors over HTTP with range requests: headers and the byte ranges asked for, nothing else.

``https://host/path/model.safetensors`` (or a ``.safetensors.index.json`` beside its shards) and
``hf://org/name[@revision]`` open as a ``Checkpoint`` whose tensors are never downloaded whole
unless read whole: the fingerprint sampler asks each file for sorted, coalesced byte ranges and the
file counts what it fetched. Small metadata files (config, tokenizer, licence) are fetched whole
into a temporary folder that goes away when the checkpoint is closed.
"""

from __future__ import annotations

import http.client
import json
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import FormatError, NotFoundError, UsageError
from .base import METADATA_PATTERNS, Checkpoint
from .safetensors import SafetensorsFile

RETRIES = 4
PARALLEL = 8  # range requests in flight per file
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_METADATA_NAMES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "LICENSE",
)


def is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://", "hf://"))


class HttpRangeFile:
    """One remote file read by HTTP range requests, with retries and resumption; bytes counted."""

    def __init__(
        self, url: str, headers: dict[str, str] | None = None, progress: Callable[[int], None] | None = None
    ) -> None:
        self.path = url
        self.headers = dict(headers or {})
        self.progress = progress
        self.bytes_read = 0
        first, self.size = self._get(0, 1)
        self.bytes_read += len(first)

    def _get(self, start: int, stop: int) -> tuple[bytes, int]:
        """Bytes ``[start, stop)`` and the file's size, resuming a short answer, retrying failures."""
        data = b""
        size = -1
        attempt = 0
        while start + len(data) < stop:
            request = urllib.request.Request(
                self.path, headers={**self.headers, "Range": f"bytes={start + len(data)}-{stop - 1}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    if response.status != 206:
                        raise FormatError(
                            self.path, f"the server ignored a range request (HTTP {response.status})"
                        )
                    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                    if match is None or match.group(3) == "*":
                        raise FormatError(self.path, "the server's range answer has no Content-Range size")
                    size = int(match.group(3))
                    chunk = response.read(stop - start - len(data))
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise NotFoundError(self.path, "not found (HTTP 404)") from None
                if exc.code == 416:
                    raise FormatError(
                        self.path, f"truncated: bytes {start}:{stop} lie beyond the file"
                    ) from None
                if exc.code < 500 or attempt >= RETRIES:
                    raise NotFoundError(self.path, f"HTTP {exc.code} {exc.reason}") from None
                chunk = b""
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
                if attempt >= RETRIES:
                    reason = getattr(exc, "reason", exc)
                    raise NotFoundError(self.path, f"cannot fetch: {reason}") from None
                chunk = b""
            if not chunk:
                attempt += 1
                time.sleep(0.2 * 2**attempt)
                continue
            data += chunk
            if self.progress is not None:
                self.progress(len(chunk))
        return data, size

    def read_ranges(self, ranges: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
        """The bytes of each ``[start, stop)`` range (sorted, coalesced by the caller), one request
        each, PARALLEL in flight: a kept row is a few KB, so latency rules, not bandwidth."""
        for start, stop in ranges:
            if start < 0 or stop > self.size:
                raise FormatError(
                    self.path, f"byte range {start}:{stop} lies outside the {self.size}-byte file"
                )
        with ThreadPoolExecutor(min(PARALLEL, max(len(ranges), 1))) as pool:
            fetched = list(pool.map(lambda r: self._get(*r)[0] if r[1] > r[0] else b"", ranges))
        self.bytes_read += sum(len(data) for data in fetched)
        return [(start, data) for (start, _), data in zip(ranges, fetched, strict=True)]

    def view(self, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """Bytes ``[offset, offset + itemsize * prod(shape))`` fetched into an array (a whole read)."""
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * np.dtype(dtype).itemsize
        [(_, data)] = self.read_ranges([(offset, offset + nbytes)])
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    def close(self) -> None:
        pass


class RemoteSafetensorsFile(SafetensorsFile):
    """A safetensors file behind a URL: the header is validated as for a local file."""

    def __init__(
        self, url: str, headers: dict[str, str] | None = None, progress: Callable[[int], None] | None = None
    ) -> None:
        self.path = url  # type: ignore[assignment] - a URL names the file in errors
        self._map = HttpRangeFile(url, headers, progress)  # type: ignore[assignment]
        self._infos, self._offsets = self._parse_header()
        self._by_name = {info.name: info for info in self._infos}

    @property
    def bytes_read(self) -> int:
        return self._map.bytes_read


@dataclass
class RemoteCheckpoint(Checkpoint):
    """A checkpoint read over HTTP; its fetched metadata files live in a folder removed on close."""

    workdir: tempfile.TemporaryDirectory | None = None

    @property
    def bytes_fetched(self) -> int:
        return sum(f.bytes_read for f in self.files if isinstance(f, RemoteSafetensorsFile))

    def close(self) -> None:
        super().close()
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None


def open_remote(
    source: str, *, allow_network: bool = False, progress: Callable[[int], None] | None = None
) -> RemoteCheckpoint:
    """Open ``https://…/model.safetensors``, ``…/model.safetensors.index.json`` or ``hf://org/name[@rev]``."""
    if not allow_network:
        raise UsageError(source, "a remote model is read over the network only with --allow-network")
    headers: dict[str, str] = {}
    if source.startswith("hf://"):
        urls, metadata_urls, headers = _hub_urls(source[len("hf://") :])
    else:
        urls, metadata_urls = _url_files(source, headers)
    workdir = tempfile.TemporaryDirectory(prefix="scratchcheck-remote-")
    try:
        files = [RemoteSafetensorsFile(url, headers, progress) for url in urls]
        metadata = _fetch_metadata(metadata_urls, Path(workdir.name), headers)
    except BaseException:
        workdir.cleanup()
        raise
    return RemoteCheckpoint(Path(source), "safetensors", files, metadata, workdir=workdir)


def _url_files(url: str, headers: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    base = url.rsplit("/", 1)[0]
    metadata = {name: f"{base}/{name}" for name in _METADATA_NAMES}
    if url.endswith(".index.json"):
        index = _fetch_json(url, headers)
        shards = dict.fromkeys(index.get("weight_map", {}).values()) if isinstance(index, dict) else {}
        if not shards or not all(isinstance(s, str) and "/" not in s for s in shards):
            raise FormatError(url, "no usable 'weight_map' in the shard index")
        return [f"{base}/{shard}" for shard in shards], metadata
    if not url.endswith(".safetensors"):
        raise UsageError(url, "a remote model must be a .safetensors file, its shard index or hf://org/name")
    return [url], metadata


def _hub_urls(model_id: str) -> tuple[list[str], dict[str, str], dict[str, str]]:
    from huggingface_hub import HfApi, get_token, hf_hub_url

    repo_id, _, revision = model_id.partition("@")
    try:
        names = HfApi().list_repo_files(repo_id, revision=revision or None)
    except Exception as exc:  # the hub client raises many types; each is one line for the user
        raise NotFoundError(
            f"hf://{model_id}", f"cannot list the repository: {exc}".splitlines()[0]
        ) from None
    weights = sorted(n for n in names if n.endswith(".safetensors") and "/" not in n)
    if not weights:
        raise NotFoundError(f"hf://{model_id}", "no top-level .safetensors files in the repository")
    token = get_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def url(name: str) -> str:
        return hf_hub_url(repo_id, name, revision=revision or None)

    metadata = {
        n: url(n)
        for n in names
        if "/" not in n
        and any(PurePosixPath(n).match(p) for p in METADATA_PATTERNS)
        and not n.endswith(".index.json")
    }
    return [url(n) for n in weights], metadata, headers


def _fetch_json(url: str, headers: dict[str, str]) -> object:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise NotFoundError(url, f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise NotFoundError(url, f"cannot fetch: {exc.reason}") from None
    except ValueError:
        raise FormatError(url, "not valid JSON") from None


def _fetch_metadata(urls: dict[str, str], folder: Path, headers: dict[str, str]) -> dict[str, Path]:
    """The metadata files that exist, fetched whole (they are small); missing ones are skipped."""
    found = {}
    for name, url in urls.items():
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
                data = response.read(64 * 1024 * 1024)
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            continue
        path = folder / name
        path.write_bytes(data)
        found[name] = path
    return found
