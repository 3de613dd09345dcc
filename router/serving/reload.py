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

from router.errors import GateError, IntentsError, NotFoundError
from router.routing.engine import BuildAbandoned, Engine, Snapshot, revision_of
from router.routing.gate import Gate, Verdict, check_labels, gate_path, load_gate, measure, verdict
from router.routing.intents import IntentSet, IntentsLimits, load_intents
from router.routing.lint import lint_snapshot
from router.routing.scorecard import Scorecard

__all__ = ["KEEP_REVISIONS", "ReloadStatus", "Reloader", "Revision"]

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
#: Revisions kept in memory for Rollback, the serving one included (``serve
#: --keep-revisions``).
KEEP_REVISIONS = 3


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    trigger: str  # "start", "watch", "sighup", "rpc", "rollback"
    at: float  # unix time the reload finished
    ok: bool
    revision: str  # the revision serving after this reload
    changed: bool  # whether a new revision was swapped in
    errors: tuple[str, ...] = ()
    seconds: float = 0.0
    #: Each bound of the regression gate against the candidate's figure (a gate ran).
    gate_results: tuple[str, ...] = ()
    #: The gate refused the candidate (a figure under its bound).
    gated: bool = False


@dataclass(frozen=True, slots=True)
class Revision:
    """A revision kept in memory: what Rollback can serve again."""

    snapshot: Snapshot
    loaded_at: float  # unix time it first served
    trigger: str  # what built it

    @property
    def revision(self) -> str:
        return self.snapshot.revision


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
        keep: int = KEEP_REVISIONS,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1 (the serving revision), got {keep}")
        self.engine = engine
        self.keep = keep
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
        #: Where the regression gate is read from (it is optional).
        self.gate_file = gate_path(self.path)
        #: Revisions kept for Rollback, oldest first; the serving one is among them.
        self._kept: list[Revision] = []
        #: Figures measured on a gate's data: (revision, data digest) -> figures.
        self._measured: dict[tuple[str, str], Scorecard] = {}
        #: Lint findings of each kept revision (Info shows the serving one's).
        self._findings: dict[str, tuple[str, ...]] = {}
        #: The newest rollback's status once done, and the reloads asked before it.
        self._rollback: asyncio.Future[ReloadStatus] | None = None
        self._rollback_covers = 0

    @property
    def linting(self) -> bool:
        """A lint of the serving revision is running (off the reload path)."""
        return bool(self._lints)

    @property
    def requests(self) -> int:
        """Reloads asked for so far (triggers and ``reload`` calls; superseded ones too)."""
        return self._asked

    @property
    def revisions(self) -> tuple[Revision, ...]:
        """The kept revisions, oldest first (ListRevisions)."""
        return tuple(self._kept)

    async def gate_start(self, snapshot: Snapshot) -> tuple[str, ...]:
        """Gate the snapshot built at start-up (nothing serves yet: ``max_drop`` does not
        apply). Returns the gate's lines (none without a gate); raises ``GateError``
        when the gate file is broken or a bound fails: the server does not start."""
        loop = asyncio.get_running_loop()
        gate = await loop.run_in_executor(self._executor, load_gate, self.gate_file)
        if gate is None:
            return ()
        check_labels(gate, snapshot.intents)
        judged = await loop.run_in_executor(
            self._executor, functools.partial(self._judge, gate, snapshot, None, None)
        )
        for line in judged.lines:
            log.info("gate (start): %s", line)
        if not judged.passed:
            refused = f"the regression gate refuses revision {snapshot.revision}:"
            raise GateError([refused, *judged.errors])
        self._measured[(snapshot.revision, gate.digest)] = judged.figures
        return judged.lines

    def record_start(self, snapshot: Snapshot, gate_results: tuple[str, ...] = ()) -> None:
        """Record the snapshot loaded at start-up as the first reload."""
        self.status = ReloadStatus(
            "start", time.time(), True, snapshot.revision, True, (), snapshot.build_seconds,
            gate_results,
        )  # fmt: skip
        self._keep(snapshot, "start")
        if self.on_status is not None:
            self.on_status(self.status)

    def _keep(self, snapshot: Snapshot, trigger: str) -> None:
        """Remember ``snapshot`` (now serving) as the newest revision; forget the oldest
        beyond ``keep``. A revision built again moves to the newest place and keeps the
        time it first served."""
        first = next((r for r in self._kept if r.revision == snapshot.revision), None)
        self._kept = [r for r in self._kept if r.revision != snapshot.revision]
        loaded_at = first.loaded_at if first is not None else time.time()
        self._kept.append(Revision(snapshot, loaded_at, trigger))
        while len(self._kept) > self.keep:
            gone = next(r for r in self._kept if r.snapshot is not self.engine.snapshot)
            self._kept.remove(gone)
            self._findings.pop(gone.revision, None)
            for key in [k for k in self._measured if k[0] == gone.revision]:
                del self._measured[key]
            log.info(
                "revision %s is no longer kept (--keep-revisions %d)", gone.revision, self.keep
            )

    def kept(self, revision: str) -> Revision:
        """The kept revision ``revision``; empty: the one kept before the serving one.
        ``NotFoundError`` names the kept ones otherwise."""
        names = ", ".join(r.revision for r in reversed(self._kept)) or "none"
        if not revision:
            serving = self.engine.snapshot.revision
            at = next(i for i, r in enumerate(self._kept) if r.revision == serving)
            if at == 0:
                raise NotFoundError(
                    f"no revision is kept before the serving one {serving} (kept: {names})"
                )
            return self._kept[at - 1]
        found = next((r for r in self._kept if r.revision == revision), None)
        if found is None:
            raise NotFoundError(f"revision {revision!r} is not kept (kept, newest first: {names})")
        return found

    async def rollback(self, revision: str) -> ReloadStatus:
        """Serve the kept revision ``revision`` again (empty: the one before the serving
        one); ``NotFoundError`` when it is not kept. See the module doc."""
        target = self.kept(revision)
        start = time.perf_counter()
        # reloads asked so far are superseded: their callers get this rollback's status
        done: asyncio.Future[ReloadStatus] = asyncio.get_running_loop().create_future()
        self._rollback, self._rollback_covers = done, self._asked
        self._covered = max(self._covered, self._asked)
        if self._abandon is not None:
            self._abandon.set()  # a running build or gate stops at its next step
        try:
            status = await self._roll_back(target, start)
        except BaseException:
            done.set_result(self.status)  # cancelled or stopped: the status that stands
            raise
        done.set_result(status)
        return status

    async def _roll_back(self, target: Revision, start: float) -> ReloadStatus:
        async with self._lock:
            if self._stop.is_set():
                return self.status
            before = self.engine.snapshot.revision
            self.engine.swap(target.snapshot)  # one reference store, like any reload
            self.lint_findings = self._findings.get(target.revision, ())
            status = ReloadStatus(
                "rollback", time.time(), True, target.revision, before != target.revision, (),
                time.perf_counter() - start,
            )  # fmt: skip
            log.warning(
                "rollback: now serving revision %s (was %s); the files on disk are unchanged "
                "and serve again at the next reload",
                target.revision,
                before,
            )
            await self._record(status)
            return status

    async def _record(self, status: ReloadStatus) -> None:
        async with self._changed:
            self.status = status
            self.count += 1
            self._changed.notify_all()
        if self.on_status is not None:
            self.on_status(status)

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
        own: ReloadStatus | None = None
        async with self._lock:
            while self._covered < ticket and not self._stop.is_set():
                asked = self._asked
                status = await self._attempt(self._trigger)
                if status is None:
                    continue  # abandoned: read the newest files (unless a rollback covered it)
                self._covered = max(self._covered, asked)
                await self._record(status)
                if asked >= ticket:
                    own = status
            current = self.status
        if own is not None:
            return own
        rollback = self._rollback
        if rollback is not None and ticket <= self._rollback_covers:
            return await asyncio.shield(rollback)  # superseded by it: its status
        return current

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
        gate_results: tuple[str, ...] = ()
        gated = False
        try:
            load = functools.partial(load_intents, self.path, self.limits)
            intents = await loop.run_in_executor(self._executor, load)
            gate = await loop.run_in_executor(self._executor, load_gate, self.gate_file)
            if abandon.is_set():
                raise BuildAbandoned("the files changed while they were read")
            changed = (
                serving is None
                or intents.revision != serving.intents.revision
                or not serving.final  # its final build was abandoned: build it now
            )
            if changed:
                # a gated reload is judged on what a cold start builds (no warm interim:
                # the gate's own run takes longer than the final build saves)
                warm_from = serving if gate is None else None
                snapshot = await self._candidate(intents, abandon, warm_from)
                if gate is not None:
                    check_labels(gate, snapshot.intents)
                    judge = functools.partial(self._judge, gate, snapshot, serving, abandon.is_set)
                    judged = await loop.run_in_executor(self._executor, judge)
                    gate_results = judged.lines
                    for line in gate_results:
                        log.info("gate (%s): %s", trigger, line)
                    if not judged.passed:
                        gated = True
                        raise GateError(judged.errors)
                if abandon.is_set():  # superseded while it was gated: never swapped in
                    raise BuildAbandoned("a newer reload or a rollback came during the gate")
                self.engine.swap(snapshot)
                self._keep(snapshot, trigger)
                if gate is not None:  # the baseline of the next gated reload
                    self._measured[(snapshot.revision, gate.digest)] = judged.figures
                current = snapshot.revision
                log.info("reload (%s): now serving revision %s", trigger, current)
        except BuildAbandoned:
            self.abandoned += 1
            log.info(
                "reload (%s) abandoned after %.2f s: superseded by a newer request",
                trigger,
                time.perf_counter() - start,
            )
            return None
        except (IntentsError, GateError) as exc:
            if abandon.is_set():  # these files are stale already: read the newer ones
                self.abandoned += 1
                return None
            errors = (
                tuple(str(p) for p in exc.problems) if isinstance(exc, IntentsError) else exc.lines
            )
            what = "refused by the regression gate" if gated else "rejected"
            for line in errors:
                log.error("reload (%s) %s: %s", trigger, what, line)
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
            gate_results,
            gated,
        )

    async def _candidate(
        self, intents: IntentSet, abandon: threading.Event, warm_from: Snapshot | None
    ) -> Snapshot:
        """The snapshot for ``intents``: a kept one of the same revision (going forward
        again after a rollback costs no build), else built on the reload thread (warm
        from ``warm_from`` when given: ``Engine.build``)."""
        revision = revision_of(intents, self.engine.encoder)
        kept = next((r for r in self._kept if r.revision == revision), None)
        if kept is not None:
            log.info("revision %s is kept in memory: served again without a build", revision)
            return kept.snapshot
        build = functools.partial(self.engine.build, intents, abandon.is_set, warm_from=warm_from)
        return await asyncio.get_running_loop().run_in_executor(self._executor, build)

    def _judge(
        self,
        gate: Gate,
        candidate: Snapshot,
        serving: Snapshot | None,
        abandoned: Callable[[], bool] | None,
    ) -> Verdict:
        """The gate's verdict on ``candidate`` (runs the model: on the reload thread). The
        serving revision is measured once per data file (``_measured``; a candidate's
        figures go there once it serves)."""
        figures = measure(self.engine, candidate, gate, abandoned)
        baseline = None
        if serving is not None and any(b.kind == "max_drop" for b in gate.bounds):
            key = (serving.revision, gate.digest)
            if key not in self._measured:
                self._measured[key] = measure(self.engine, serving, gate, abandoned)
            baseline = self._measured[key]
        return verdict(gate, figures, baseline)

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
        self._kept = [
            Revision(final, r.loaded_at, r.trigger) if r.snapshot is snapshot else r
            for r in self._kept
        ]  # Rollback serves the final snapshot of a kept revision
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
        if snapshot.revision in self._findings:  # a kept revision served again
            self.lint_findings = self._findings[snapshot.revision]
            return
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
        lines = tuple(str(f) for f in findings)
        self._findings[snapshot.revision] = lines
        if self.engine.snapshot is snapshot:  # not rolled back meanwhile
            self.lint_findings = lines
        for line in lines[:_LOGGED_FINDINGS]:
            log.warning("lint: %s", line)
        if len(lines) > _LOGGED_FINDINGS:
            log.warning(
                "lint: %d more findings (Info.lint_findings, or `intent-router lint`)",
                len(lines) - _LOGGED_FINDINGS,
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
