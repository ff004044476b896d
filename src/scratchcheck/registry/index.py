"""Batch indexing: fingerprint many checkpoints in parallel and register them.

Workers (a local process pool, or Ray tasks when the list outgrows one machine) only fingerprint:
each returns the fingerprint's bytes, or the error that stopped it, to the driver, which is the only
writer to the registry. A source is skipped when its files look exactly as when it was indexed
(``source_key``: resolved path, names, sizes and modification times), so an interrupted batch
resumes where it stopped; content registered from another path is caught by its hash. One failure
never stops the batch: it is recorded with its error (``Registry.failures``) and retried next time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import UsageError
from .sources import Fingerprinted, default_name, fingerprint_source, source_key
from .store import Registry

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class IndexSummary:
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # sources already indexed
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (source, entry with its content)
    failed: dict[str, str] = field(default_factory=dict)  # source -> error


class Progress(Protocol):
    def start(self, total: int, description: str) -> None: ...

    def advance(self, label: str) -> None: ...


def index(
    sources: Sequence[str],
    registry: Registry,
    *,
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
    allow_network: bool = False,
) -> IndexSummary:
    """Fingerprint every source not yet indexed and register it; see the module docstring."""
    if engine not in ENGINES:
        raise UsageError(None, f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    summary = IndexSummary()
    known = registry.source_keys()
    keys = {}
    for source in dict.fromkeys(sources):
        key = source_key(source)
        if key in known:
            summary.skipped.append(source)
        else:
            keys[source] = key
    if progress is not None:
        progress.start(len(keys), f"indexing {len(keys)} checkpoint(s)")
    todo = list(keys)
    runner = _local(todo, workers, allow_network) if engine == "local" else _ray(todo, address, allow_network)
    for result in runner:
        _record(registry, result, keys[result.source], summary)
        if progress is not None:
            progress.advance(default_name(result.source))
    return summary


def _record(registry: Registry, result: Fingerprinted, key: str, summary: IndexSummary) -> None:
    """The driver's one write per source: the entry, or the failure."""
    if result.error is not None:
        registry.record_failure(result.source, result.error)
        summary.failed[result.source] = result.error
        return
    name = default_name(result.source)
    if _name_taken(registry, name):
        name = str(Path(result.source).resolve()) if Path(result.source).exists() else result.source
    try:
        added = registry.add(
            [result.data],
            name=name,
            source=result.source,
            params=result.params,
            source_key=key,
            shapes=result.shapes,
            sketches=result.sketches,
            model_hash=result.model_hash,
        )
    except UsageError as exc:
        registry.record_failure(result.source, exc.problem)
        summary.failed[result.source] = exc.problem
        return
    if added.created:
        summary.added.append(added.entry.name)
    else:
        summary.duplicates.append((result.source, added.entry.name))


def _name_taken(registry: Registry, name: str) -> bool:
    return registry.find_name(name) is not None


def _local(sources: list[str], workers: int | None, allow_network: bool) -> Iterator[Fingerprinted]:
    """A process pool (spawned: the driver's progress thread must not be forked); results as they finish."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    if not sources:
        return
    workers = min(workers or os.cpu_count() or 1, len(sources))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(fingerprint_source, s, allow_network): s for s in sources}
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:  # a worker was killed (out of memory, a signal)
                yield Fingerprinted(futures[future], error="the worker process died while fingerprinting")


def _ray(sources: list[str], address: str | None, allow_network: bool) -> Iterator[Fingerprinted]:
    """One Ray task per checkpoint; the results come back to this driver as they finish."""
    try:
        import ray
    except ImportError:
        raise UsageError(None, "the ray engine needs Ray: pip install 'scratchcheck[ray]'") from None
    if not sources:
        return
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(fingerprint_source)
        pending = {task.remote(s, allow_network): s for s in sources}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            source = pending.pop(done[0])
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayError as exc:  # the task's worker or node died
                yield Fingerprinted(source, error=f"ray: {type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        if started_here:
            ray.shutdown()
