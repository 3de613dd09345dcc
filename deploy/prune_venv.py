"""Print the distributions of this environment that serving never uses, one per line.

Run by deploy/Dockerfile's serving-venv stage with the image's venv; the output goes to
``pip uninstall``. Kept: everything ``intent-router`` (with the extras named on the command
line) requires, transitively, except along the requirement edges in ``UNUSED_EDGES``.
Everything else goes, pip and setuptools included (serving installs nothing); pip is
printed last, so that one ``pip uninstall -r`` can remove it after the others.

``tokenizers`` declares ``huggingface-hub`` for ``Tokenizer.from_pretrained``; the service
reads ``tokenizer.json`` from the model directory, so the hub and what only it pulls in
(an HTTP client, hf-xet, fsspec, tqdm, click, ...) are dead weight in the image.

    python prune_venv.py [EXTRA ...]
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

from packaging.requirements import Requirement

ROOT = "intent-router"
UNUSED_EDGES = {("tokenizers", "huggingface-hub")}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(dist: metadata.Distribution, extras: set[str]) -> list[str]:
    """The names ``dist`` requires here (markers evaluated, with ``extras`` requested)."""
    names = []
    for line in dist.requires or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in extras | {""}):
            names.append(canonical(requirement.name))
    return names


def unused(extras: set[str]) -> list[str]:
    installed = {canonical(d.metadata["Name"]): d for d in metadata.distributions()}
    kept: set[str] = set()
    todo = [canonical(ROOT)]
    while todo:
        name = todo.pop()
        if name in kept or name not in installed:
            continue
        kept.add(name)
        wanted = extras if name == canonical(ROOT) else set()
        todo += [r for r in requirements(installed[name], wanted) if (name, r) not in UNUSED_EDGES]
    if canonical(ROOT) not in kept:
        sys.exit(f"prune_venv: {ROOT} is not installed in {sys.prefix}")
    # pip last: it uninstalls itself after the others
    return sorted(set(installed) - kept, key=lambda name: (name == "pip", name))


if __name__ == "__main__":
    print("\n".join(unused(set(sys.argv[1:]))))
