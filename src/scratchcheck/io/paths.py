"""The one rule for following links out of a model folder, applied by every reader.

A model folder is untrusted: any shard, config or external-data file in it may be a symlink. A link is
followed only when it resolves inside the model's folder or, for a Hugging Face cache snapshot
(``models--org--name/snapshots/<revision>/``, whose files are links into ``../../blobs/``), inside
that repository's cache folder. Anything else (``config.json -> /etc/passwd``, a shard on another
model's disk, a link loop) is refused with one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FormatError


def containment_root(folder: Path) -> Path:
    """The folder that files of the model in ``folder`` may resolve into."""
    folder = folder.resolve()
    for candidate in (folder, *folder.parents):
        repo = candidate.parent.parent
        if (
            candidate.parent.name == "snapshots"
            and repo.name.startswith("models--")
            and (repo / "blobs").is_dir()
        ):
            return repo
    return folder


def contained(path: Path, folder: Path, what: str) -> Path:
    """``path`` (a file or folder of the model in ``folder``) after checking where it resolves to;
    whether it exists is left to the caller."""
    try:
        target = path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a link loop; a NUL byte in the name
        raise FormatError(path, f"{what} cannot be resolved ({exc})".splitlines()[0]) from None
    root = containment_root(folder)
    if not target.is_relative_to(root):
        raise FormatError(path, f"{what} links to {target}, outside the model folder {root}")
    return path
