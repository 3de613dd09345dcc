"""Hot reload: watch the intents, rebuild off the request path, swap in one step.

Triggers: a change under the watched directory (debounced), SIGHUP, the Reload RPC.
Each reload parses and validates the intents within their limits (``IntentsLimits``:
file size, YAML aliases, example length, examples and intents in total), builds a new
snapshot on a thread of its own (re-embedding only what the vector cache lacks) and
swaps the engine's reference: first a warm snapshot (the serving head and calibrated
threshold carried over, ``Engine.build(warm_from=...)``), then, built on the same
thread after the swap, the final one a cold start would build (``Engine.complete``).
The revision is linted on a thread of its own. A reload that fails, because the
intents do not validate or because the build raised, leaves the old snapshot serving
and records the error (log, ``status``, ``on_status``: the metrics count it as
``result="error"``); the next trigger tries again.

Reloads never overlap: one runs at a time, on one thread. A trigger that comes while a
reload runs supersedes it: the running build is abandoned between two chunks of
examples (``Engine.build(abandoned=...)``; what it embedded stays in the vector cache)
and the newest files are read and built next. Every caller gets the status of the
first reload that read the files after it asked. Answers only ever see a swap. (Edits
that keep coming faster than a build takes keep superseding it; the debounce below
bounds a watcher to one trigger a second.) ``in_progress`` says a reload is running.

The directory, not the file, is watched: editors save by writing a temporary file and
renaming it over the original, and Kubernetes updates a mounted ConfigMap by swapping
a ``..data`` symlink. A watch follows the directory's inode, so when the directory is
deleted and made again, or replaced (``mv new old``), it would see nothing more. The
watcher therefore compares the path's inode with the watched one at every wake-up (a
change, or ``check_ms`` without one). When the directory has gone or been replaced, it
logs a warning, ``watching`` turns false and ``watch_problem`` says why (Info,
``intent_router_watching``), and it tries the path again with a bounded back-off
(``RETRY_MS``); once the directory is back it is watched again and reloaded. The loaded
intents keep serving meanwhile, and health is unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, awatch

from router.errors import IntentsError
from router.routing.engine import BuildAbandoned, Engine, Snapshot
from router.routing.intents import IntentsLimits, load_intents
from router.routing.lint import lint_snapshot

__all__ = ["ReloadStatus", "Reloader"]

log = logging.getLogger(__name__)

#: A burst of writes is one reload once the directory has been quiet this long.
DEBOUNCE_MS = 20
#: Without changes, the watcher checks this often that the path is still the directory
#: it watches (a deleted or replaced directory reports nothing more).
CHECK_MS = 500
#: Waits between attempts to watch a path that is missing: the first, doubling to the
#: last.
RETRY_MS = (50, 5_000)


#: Lint findings logged at each reload; the rest are in Info.
_LOGGED_FINDINGS = 20


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
        limits: IntentsLimits | None = None,
        debounce_ms: int = DEBOUNCE_MS,
        max_debounce_ms: int = 1000,
        check_ms: int = CHECK_MS,
        retry_ms: tuple[int, int] = RETRY_MS,
        on_status: Callable[[ReloadStatus], None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_status = on_status
        self.path = Path(path)
        self.limits = limits if limits is not None else IntentsLimits()
        self.debounce_ms = debounce_ms
        self.max_debounce_ms = max_debounce_ms
        self.check_ms = check_ms
        self.retry_ms = retry_ms
        # decided now: the path may be missing later, while the watcher waits for it
        self.directory = self.path if self.path.is_dir() else self.path.parent
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reload")
        self._lint_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lint")
        self._lints: set[asyncio.Task[None]] = set()
        self._newer = asyncio.Event()  # set: a reload was asked for since the attempt began
        self._changed = asyncio.Condition()
        self._stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[ReloadStatus]] = set()
        self.status = ReloadStatus(trigger="start", at=time.time(), ok=False, revision="",
                                   changed=False, errors=("not loaded yet",))  # fmt: skip
        self.count = 0
        #: Reloads asked for so far, and the last of them a recorded reload covered (it
        #: read the files after they were asked for).
        self._asked = 0
        self._covered = 0
        self._trigger = "start"  # the newest request's
        self._abandon: threading.Event | None = None  # set: the running build stops
        #: A reload is running (Info.reload_in_progress, intent_router_reload_in_progress).
        self.in_progress = False
        #: Reloads abandoned for a newer request.
        self.abandoned = 0
        #: What ``intent-router lint`` finds in the serving revision (warnings).
        self.lint_findings: tuple[str, ...] = ()
        #: The directory is being watched; ``watch_problem`` says why not after a loss.
        self.watching = False
        self.watch_problem = ""

    @property
    def linting(self) -> bool:
        """A lint of the serving revision is running (off the reload path)."""
        return bool(self._lints)

    @property
    def requests(self) -> int:
        """Reloads asked for so far (triggers and ``reload`` calls; superseded ones too)."""
        return self._asked

    def record_start(self, snapshot: Snapshot) -> None:
        """Record the snapshot loaded at start-up as the first reload."""
        self.status = ReloadStatus(
            "start", time.time(), True, snapshot.revision, True, (), snapshot.build_seconds
        )
        if self.on_status is not None:
            self.on_status(self.status)

    async def reload(self, trigger: str) -> ReloadStatus:
        """Load, validate, build and swap; on failure keep serving the old snapshot.

        A reload running now is abandoned for this one (module doc). The answer is the
        status of the first reload that read the files after this call; it is recorded
        even when the caller goes away meanwhile.
        """
        return await asyncio.shield(self._request(trigger))

    def _request(self, trigger: str) -> asyncio.Task[ReloadStatus]:
        self._asked += 1
        self._trigger = trigger
        if self._abandon is not None:
            self._abandon.set()
        self._newer.set()
        task = asyncio.create_task(self._until_covered(self._asked), name="intents-reload")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[ReloadStatus]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("reload failed", exc_info=exc)

    async def _until_covered(self, ticket: int) -> ReloadStatus:
        async with self._lock:
            while self._covered < ticket and not self._stop.is_set():
                asked = self._asked
                status = await self._attempt(self._trigger)
                if status is None:
                    continue  # abandoned: read the newest files
                self._covered = asked
                async with self._changed:
                    self.status = status
                    self.count += 1
                    self._changed.notify_all()
                if self.on_status is not None:
                    self.on_status(status)
            return self.status

    async def _attempt(self, trigger: str) -> ReloadStatus | None:
        """One reload; None when a newer request abandoned it."""
        loop = asyncio.get_running_loop()
        abandon = self._abandon = threading.Event()
        self._newer.clear()
        self.in_progress = True
        start = time.perf_counter()
        serving = self.engine.snapshot if self.engine.ready else None
        current = serving.revision if serving is not None else ""
        changed = False
        errors: tuple[str, ...] = ()
        try:
            load = functools.partial(load_intents, self.path, self.limits)
            intents = await loop.run_in_executor(self._executor, load)
            if abandon.is_set():
                raise BuildAbandoned("the files changed while they were read")
            changed = (
                serving is None
                or intents.revision != serving.intents.revision
                or not serving.final  # its final build was abandoned: build it now
            )
            if changed:
                build = functools.partial(
                    self.engine.build, intents, abandon.is_set, warm_from=serving
                )
                snapshot = await loop.run_in_executor(self._executor, build)
                self.engine.swap(snapshot)
                current = snapshot.revision
                log.info("reload (%s): now serving revision %s", trigger, current)
        except BuildAbandoned:
            self.abandoned += 1
            log.info(
                "reload (%s) abandoned after %.2f s: newer files are read and built next",
                trigger,
                time.perf_counter() - start,
            )
            return None
        except IntentsError as exc:
            if abandon.is_set():  # these files are stale already: read the newer ones
                self.abandoned += 1
                return None
            errors = tuple(str(p) for p in exc.problems)
            for line in errors:
                log.error("reload (%s) rejected: %s", trigger, line)
        except Exception as exc:  # a failed build must be reported, never lost
            log.exception("reload (%s) failed; revision %s keeps serving", trigger, current)
            errors = (f"reload failed: {type(exc).__name__}: {exc}",)
        else:
            if changed:  # after the swap: the final build, the vector file, lint
                snapshot = await self._complete(snapshot, abandon)
                if not abandon.is_set():  # else the newer reload writes the file
                    try:
                        await loop.run_in_executor(self._executor, self.engine.persist)
                    except Exception:  # the swap stands; the vectors are embedded again later
                        log.exception("reload (%s): the vector cache was not written", trigger)
                await self._lint_unless_newer(snapshot)
        finally:
            self._abandon = None
            self.in_progress = False
        return ReloadStatus(
            trigger,
            time.time(),
            not errors,
            current,
            changed and not errors,
            errors,
            time.perf_counter() - start,
        )

    async def _complete(self, snapshot: Snapshot, abandon: threading.Event) -> Snapshot:
        """After a warm-started swap, build and swap the final snapshot (the head a cold
        start trains) off the answer path; a newer request abandons it (the warm one
        keeps serving and the next reload completes what it builds)."""
        if snapshot.final:
            return snapshot
        complete = functools.partial(self.engine.complete, snapshot, abandon.is_set)
        try:
            final = await asyncio.get_running_loop().run_in_executor(self._executor, complete)
        except BuildAbandoned:
            return snapshot
        except Exception:  # the warm snapshot keeps serving; the next reload tries again
            log.exception("the final build of revision %s failed", snapshot.revision)
            return snapshot
        if self.engine.snapshot is snapshot:
            self.engine.swap(final)
        return final

    async def _lint_unless_newer(self, snapshot: Snapshot) -> None:
        """Lint ``snapshot`` on a thread of its own; the reload waits for it (its status
        then goes with the revision's findings) unless a newer reload is asked for, which
        never waits for a lint."""
        task = asyncio.create_task(self.lint(snapshot), name="intents-lint")
        self._lints.add(task)
        task.add_done_callback(self._lints.discard)
        newer = asyncio.create_task(self._newer.wait())
        try:
            await asyncio.wait({task, newer}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this reload is cancelled (close)
            newer.cancel()

    async def lint(self, snapshot: Snapshot) -> None:
        """Lint the serving snapshot off the answer path; findings go to the log (warnings)
        and to ``lint_findings`` (Info). A lint that fails is logged, never fatal; one
        whose snapshot no longer serves is skipped."""
        loop = asyncio.get_running_loop()
        if self.engine.snapshot is not snapshot:
            return
        try:
            findings = await loop.run_in_executor(
                self._lint_executor, functools.partial(lint_snapshot, self.engine, snapshot)
            )
        except Exception:
            log.exception("lint of revision %s failed", snapshot.revision)
            return
        if self.engine.snapshot is not snapshot:
            return  # a newer revision serves: its own lint reports
        self.lint_findings = tuple(str(f) for f in findings)
        for line in self.lint_findings[:_LOGGED_FINDINGS]:
            log.warning("lint: %s", line)
        if len(self.lint_findings) > _LOGGED_FINDINGS:
            log.warning(
                "lint: %d more findings (Info.lint_findings, or `intent-router lint`)",
                len(self.lint_findings) - _LOGGED_FINDINGS,
            )

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
        """Watch the directory; after a loss, wait for it (bounded back-off) and re-arm."""
        directory = self.directory
        log.info("watching %s for changes", directory)
        delay, lost = self.retry_ms[0], False
        while not self._stop.is_set():
            replaced = False
            try:
                identity = _identity(directory)
            except FileNotFoundError:
                problem: str | None = f"intents directory {directory} is gone"
            except OSError as exc:
                problem = f"cannot watch {directory}: {exc}"
            else:
                try:
                    problem, replaced = await self._follow(directory, identity, lost)
                except Exception as exc:  # gone meanwhile, no inotify watches left, ...
                    problem = f"cannot watch {directory}: {exc}"
            if problem is None:
                return  # stopped
            if problem != self.watch_problem:  # once per loss, not at every retry
                log.warning("%s: hot reload paused, the loaded intents keep serving", problem)
            if self.watching:  # a watch that worked was lost: back off from the start
                delay = self.retry_ms[0]
            lost, self.watching, self.watch_problem = True, False, problem
            if replaced:  # another directory is there already: watch it at once
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay / 1e3)
            delay = min(2 * delay, self.retry_ms[1])

    async def _follow(
        self, directory: Path, identity: tuple[int, int], again: bool
    ) -> tuple[str | None, bool]:
        """Watch ``directory`` while the path names the same inode, reloading on changes.

        Returns why the watch was lost (None once stopped) and whether another directory
        has taken the path. Reloads once the watch is in place (a no-op when the files
        are those serving), so that no change made before is missed: at start-up, an edit
        made after the intents were first read (the model loads in between); after a loss
        (``again``), whatever the new directory holds.
        """
        changes = awatch(
            directory,
            watch_filter=_filter_for(self.path, directory),
            step=self.debounce_ms,
            debounce=self.max_debounce_ms,
            stop_event=self._stop,
            rust_timeout=self.check_ms,
            yield_on_timeout=True,
            ignore_permission_denied=True,
        )
        async with contextlib.aclosing(changes):
            if again:
                log.info("watching %s again: reloading it", directory)
            # runs once this task waits for changes: the watch is set up by then
            self._request("watch")
            self.watching, self.watch_problem = True, ""
            async for batch in changes:
                try:
                    now: tuple[int, int] | None = _identity(directory)
                except OSError:
                    now = None
                if now is None:
                    return f"intents directory {directory} is gone", False
                if now != identity:
                    return f"intents directory {directory} was replaced (a new inode)", True
                if batch:
                    self._request("watch")
        return None, False

    async def close(self) -> None:
        self._stop.set()
        if self._abandon is not None:
            self._abandon.set()  # a build running stops at its next chunk
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for task in [*self._tasks, *self._lints]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._lints, return_exceptions=True)
        # a build or vector-file write already running finishes before close returns:
        # nothing writes to the cache directory once the server has stopped
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self._lint_executor.shutdown, wait=True, cancel_futures=True)


def _identity(directory: Path) -> tuple[int, int]:
    """What a watch follows: the inode the path names now (OSError when it is missing)."""
    stat = os.stat(directory)
    return stat.st_dev, stat.st_ino


def _filter_for(path: Path, directory: Path) -> Callable[[Change, str], bool]:
    """Which changes matter: intents files, Kubernetes' ``..data`` swaps, and the watched
    directory itself (its removal)."""
    single = None if path.is_dir() else path.name
    itself = os.path.abspath(directory)

    def accept(change: Change, changed: str) -> bool:
        name = Path(changed).name
        if name.startswith(".."):  # ConfigMap: ..data, ..2026_11_27_... directories
            return True
        if os.path.abspath(changed) == itself:
            return True
        if single is not None:
            return name == single
        return name.endswith((".yaml", ".yml"))

    return accept
