"""``--model NAME|DIR`` for the benchmarks: resolved and opened as ``serve`` opens it.

    add_model_flag(parser)                      # --model NAME|DIR, default minilm
    model = open_model(args.model, threads=None)  # Model(choice, encoder)
    model.encoder                               # load_encoder's class, the server's
    model.serve_arg                             # what to give the served process's --model
    model.record()                              # the fields a result file keeps

A catalogue model that is missing or out of date is not pulled here (a benchmark should
not time a download): the script stops and names the ``model pull`` command.
Importing this module loads no model code (only the catalogue).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# Light: bench/throughput.py's spawned client process imports this module too.
from router.errors import ModelError
from router.model.catalogue import CATALOGUE, DEFAULT_MODEL, ModelChoice, resolve

if TYPE_CHECKING:
    from router.model.text_graph import TextGraphEncoder
    from router.model.token_graph import TokenGraphEncoder


def add_model_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="NAME|DIR",
        help=f"a catalogue model ({', '.join(CATALOGUE)}; default {DEFAULT_MODEL}) or a "
        "model directory; the served process gets the same",
    )


@dataclass(frozen=True)
class Model:
    choice: ModelChoice
    encoder: TokenGraphEncoder | TextGraphEncoder

    @property
    def label(self) -> str:
        return self.choice.label

    @property
    def serve_arg(self) -> str:
        """``--model`` for ``intent-router serve``: the name, or the absolute directory."""
        return self.choice.name or str(self.choice.directory.resolve())

    @property
    def threads(self) -> int | None:
        """The onnxruntime intra-op threads the encoder's session runs with."""
        session = getattr(self.encoder, "_session", None)
        if session is None:
            return None
        threads: int = session.get_session_options().intra_op_num_threads
        return threads

    def record(self) -> dict[str, Any]:
        e = self.encoder
        return {
            "name": self.label,
            "model_id": e.model_id,
            "directory": str(self.choice.directory),
            "encoder": type(e).__name__,
            "dimension": e.dimension,
            "layers": e.layers,
            "default_threshold": e.default_threshold,
            "threads": self.threads,
        }


def open_model(value: str | None, *, threads: int | None = None) -> Model:
    """The encoder ``--model`` names, by ``load_encoder`` (the class the server uses).

    ``threads``: as ``serve --threads`` takes it; None is the encoder's own default (the
    same as the server's when it is given no ``--threads``)."""
    from router.model.contract import needs_pull
    from router.model.loading import load_encoder

    try:
        choice = resolve(value)
        if choice.name is not None:
            reason = needs_pull(choice.directory, choice.name)
            if reason is not None:
                sys.exit(
                    f"model {choice.name} in {choice.directory}: {reason}; "
                    f"run `intent-router model pull --model {choice.name}` first"
                )
        return Model(choice, load_encoder(choice.directory, threads=threads))
    except ModelError as exc:
        sys.exit(f"error: {exc}")
