"""From what a user typed (a file, a folder, a shard index, a Hugging Face id) to a ``Checkpoint``."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

from ..errors import NotFoundError, UnsupportedError, reading
from .base import METADATA_PATTERNS, Checkpoint, TensorFile
from .limits import MAX_METADATA_BYTES
from .paths import contained

# format -> (module in scratchcheck.io, TensorFile subclass). Modules are imported on first use so
# that reading safetensors never imports onnx or gguf.
READERS: dict[str, tuple[str, str]] = {
    "safetensors": ("safetensors", "SafetensorsFile"),
    "torch": ("torch_zip", "TorchFile"),
    "gguf": ("gguf", "GGUFFile"),
    "onnx": ("onnx", "OnnxFile"),
    "npz": ("npz", "NpzFile"),
}

_SUFFIXES = {
    ".safetensors": "safetensors",
    ".bin": "torch",
    ".pt": "torch",
    ".pth": "torch",
    ".ckpt": "torch",
    ".gguf": "gguf",
    ".onnx": "onnx",
    ".npz": "npz",
}
# Which files a folder's model is read from, in order of preference.
_FOLDER_ORDER = ("safetensors", "torch", "gguf", "onnx", "npz")
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+(@[\w.\-/]+)?$")


def open_model(source: str | os.PathLike[str], *, allow_network: bool = False) -> Checkpoint:
    """Open a checkpoint lazily from a file, a folder, a shard index or a Hugging Face model id."""
    path = Path(source).expanduser()
    if not path.exists():
        text = str(source)
        if _HF_ID.match(text) and not text.startswith((".", "/", "~")):
            path = resolve_hub_id(text, allow_network=allow_network)
        else:
            raise NotFoundError(path, "no such file or folder")
    if path.is_dir():
        return _open_folder(path)
    return _open_file(path)


def detect_format(path: Path) -> str:
    """The format of one tensor file, from its suffix or, failing that, its first bytes."""
    if path.name.endswith(".index.json"):
        return "safetensors" if ".safetensors" in path.name else "torch"
    suffix = _SUFFIXES.get(path.suffix.lower())
    if suffix:
        return suffix
    try:
        with open(path, "rb") as handle:
            magic = handle.read(8)
    except OSError as exc:
        raise NotFoundError(path, f"cannot open: {exc.strerror}") from None
    if magic[:4] == b"GGUF":
        return "gguf"
    if magic[:2] == b"PK":
        return "torch"  # a zip: torch's format; .npz is recognised by suffix
    if magic[:1] == b"\x80":
        return "torch"  # a bare pickle: torch's legacy format
    raise UnsupportedError(
        path, "unknown checkpoint format (expected safetensors, .bin/.pt, GGUF, ONNX or .npz)"
    )


def open_tensor_file(path: Path, fmt: str | None = None) -> TensorFile:
    fmt = fmt or detect_format(path)
    module_name, class_name = READERS[fmt]
    module = importlib.import_module(f"{__package__}.{module_name}")
    with reading(path):
        return getattr(module, class_name)(path)


def _open_file(path: Path) -> Checkpoint:
    fmt = detect_format(path)
    files = _open_index(path, fmt) if path.name.endswith(".index.json") else [open_tensor_file(path, fmt)]
    return Checkpoint(path, fmt, files, find_metadata_files(path.parent))


def _open_index(index_path: Path, fmt: str) -> list[TensorFile]:
    from .safetensors import check_index_matches, read_index

    files = [open_tensor_file(shard, fmt) for shard in read_index(index_path)]
    if fmt == "safetensors":
        check_index_matches(index_path, files)
    return files


def _open_folder(folder: Path) -> Checkpoint:
    for fmt in _FOLDER_ORDER:
        indexes = sorted(p for p in folder.glob("*.index.json") if detect_format(p) == fmt)
        if indexes:
            index = contained(indexes[0], folder, "shard index")
            return Checkpoint(folder, fmt, _open_index(index, fmt), find_metadata_files(folder))
        candidates = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and _SUFFIXES.get(p.suffix.lower()) == fmt and not _is_optimizer_state(p)
        )
        if candidates:
            files = [open_tensor_file(contained(p, folder, "weights file"), fmt) for p in candidates]
            return Checkpoint(folder, fmt, files, find_metadata_files(folder))
    # ONNX exports often sit in an onnx/ sub-folder of a Hugging Face repo.
    onnx_dir = folder / "onnx"
    if onnx_dir.is_dir():
        return _open_folder(onnx_dir)
    raise UnsupportedError(folder, "no checkpoint files found (safetensors, .bin/.pt, GGUF, ONNX or .npz)")


def _is_optimizer_state(path: Path) -> bool:
    return path.name in {"optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"}


def find_metadata_files(folder: Path, depth: int = 2) -> dict[str, Path]:
    """Configs, tokenizer files, code and licences in ``folder`` (and sub-folders up to ``depth``);
    a link among them that leaves the model folder is refused (``paths``)."""
    found: dict[str, Path] = {}

    def visit(directory: Path, level: int) -> None:
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            return
        for entry in entries:
            if entry.is_dir() and level < depth and not entry.name.startswith("."):
                visit(contained(entry, folder, "sub-folder"), level + 1)
            elif (
                entry.is_file()
                and any(entry.match(p) for p in METADATA_PATTERNS)
                and not entry.name.endswith(".index.json")
            ) and contained(entry, folder, "metadata file").stat().st_size <= MAX_METADATA_BYTES:
                found[entry.relative_to(folder).as_posix()] = entry

    visit(folder, 1)
    return found


def resolve_hub_id(model_id: str, *, allow_network: bool = False) -> Path:
    """The local snapshot folder of ``org/name[@revision]``; online only if ``allow_network``."""
    repo_id, _, revision = model_id.partition("@")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - a core dependency
        raise NotFoundError(
            model_id, "not a local path, and huggingface_hub is not installed to resolve it"
        ) from None
    try:
        folder = snapshot_download(repo_id, revision=revision or None, local_files_only=not allow_network)
    except LocalEntryNotFoundError:
        raise NotFoundError(
            model_id,
            f"not in the local Hugging Face cache; download it with `hf download {repo_id}` "
            "or pass --allow-network",
        ) from None
    except Exception as exc:  # the hub client raises many types; each is one line for the user
        raise NotFoundError(
            model_id, f"cannot resolve from the Hugging Face cache: {exc}".splitlines()[0]
        ) from None
    return Path(folder)
