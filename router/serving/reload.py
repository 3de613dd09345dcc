"""Hot reload: watch the intents, rebuild off the request path, swap in one step.

Triggers: a change under the watched directory (debounced), SIGHUP, the Reload RPC.
Each reload parses and validates the intents, builds a new snapshot on a thread of its
own (re-embedding only what the vector cache lacks) and swaps the engine's reference.
A reload that fails leaves the old snapshot serving and records the error; the next
trigger tries again. Reloads never overlap: a trigger during a reload waits its turn.

The directory, not the file, is watched: editors save by writing a temporary file and
renaming it over the original, and Kubernetes updates a mounted ConfigMap by swapping
a ``..data`` symlink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from watchfiles import Change, awatch

from router.errors import IntentsError
from router.routing.engine import Engine, Snapshot
from router.routing.intents import load_intents

__all__ = ["ReloadStatus", "Reloader"]

log = logging.getLogger(__name__)

#: A burst of writes is one reload once the directory has been quiet this long.
DEBOUNCE_MS = 20


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    trigger: str  # "start", "watch", "sighup", "rpc"
    at: float  # unix time the reload finished
    ok: bool
    revision: str  # the revision serving after this reload
    changed: bool  # whether a new revision was swapped in
    errors: tuple[str, ...] = ()
    seconds: float = 0.0


class Reloader:
    def __init__(
        self,
        engine: Engine,
        path: Path,
        *,
        debounce_ms: int = DEBOUNCE_MS,
        max_debounce_ms: int = 1000,
        on_status: Callable[[ReloadStatus], None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_status = on_status
        self.path = Path(path)
        self.debounce_ms = debounce_ms
        self.max_debounce_ms = max_debounce_ms
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reload")
        self._changed = asyncio.Condition()
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self.status = ReloadStatus(trigger="start", at=time.time(), ok=False, revision="",
                                   changed=False, errors=("not loaded yet",))  # fmt: skip
        self.count = 0

    def record_start(self, snapshot: Snapshot) -> None:
        """Record the snapshot loaded at start-up as the first reload."""
        self.status = ReloadStatus(
            "start", time.time(), True, snapshot.revision, True, (), snapshot.build_seconds
        )
        if self.on_status is not None:
            self.on_status(self.status)

    async def reload(self, trigger: str) -> ReloadStatus:
        """Load, validate, build and swap; on failure keep serving the old snapshot."""
        async with self._lock:
            start = time.perf_counter()
            loop = asyncio.get_running_loop()
            serving = self.engine.snapshot if self.engine.ready else None
            current = serving.revision if serving is not None else ""
            try:
                intents = await loop.run_in_executor(self._executor, load_intents, self.path)
            except IntentsError as exc:
                errors = tuple(str(p) for p in exc.problems)
                for line in errors:
                    log.error("reload (%s) rejected: %s", trigger, line)
                status = ReloadStatus(trigger, time.time(), False, current, False, errors)
            else:
                changed = serving is None or intents.revision != serving.intents.revision
                if changed:
                    snapshot = await loop.run_in_executor(
                        self._executor, self.engine.build, intents
                    )
                    self.engine.swap(snapshot)
                    current = snapshot.revision
                    log.info("reload (%s): now serving revision %s", trigger, current)
                    # after the swap: writing the vector file does not delay the answers
                    await loop.run_in_executor(self._executor, self.engine.persist)
                status = ReloadStatus(trigger, time.time(), True, current, changed)
            status = replace(status, seconds=time.perf_counter() - start)
            async with self._changed:
                self.status = status
                self.count += 1
                self._changed.notify_all()
            if self.on_status is not None:
                self.on_status(status)
            return status

    async def wait_until(
        self, predicate: Callable[[ReloadStatus], bool], timeout: float = 10.0
    ) -> ReloadStatus:
        """Wait for a reload whose status satisfies ``predicate`` (for tests and tools)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.status)), timeout)
            return self.status

    def start_watching(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="intents-watcher")

    async def _watch(self) -> None:
        directory = self.path if self.path.is_dir() else self.path.parent
        watch_filter = _filter_for(self.path)
        log.info("watching %s for changes", directory)
        async for _changes in awatch(
            directory,
            watch_filter=watch_filter,
            step=self.debounce_ms,
            debounce=self.max_debounce_ms,
            stop_event=self._stop,
            ignore_permission_denied=True,
        ):
            try:
                await self.reload("watch")
            except Exception:  # a reload must never kill the watcher
                log.exception("reload after a file change failed")

    async def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        # a build or vector-file write already running finishes before close returns:
        # nothing writes to the cache directory once the server has stopped
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


def _filter_for(path: Path) -> Callable[[Change, str], bool]:
    """Which changes matter: intents files, and Kubernetes' ``..data`` swaps."""
    single = None if path.is_dir() else path.name

    def accept(change: Change, changed: str) -> bool:
        name = Path(changed).name
        if name.startswith(".."):  # ConfigMap: ..data, ..2026_11_27_... directories
            return True
        if single is not None:
            return name == single
        return name.endswith((".yaml", ".yml"))

    return accept
