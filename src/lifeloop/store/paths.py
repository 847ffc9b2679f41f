"""Safe paths: a value from bank data or configuration never decides where a file lands.

Two rules (docs/security.md): a name built from data goes through :func:`safe_part` (a conservative
character set, no leading dot, no ``..``; a changed name gets a short hash of the original so two ids
never share a file), and the final path must resolve inside its folder (:func:`inside`), symlinks
followed. An RM id of ``../../../../outside/x`` thus becomes a folder *named* after it, inside the
export folder, and never a path outside it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from lifeloop.errors import LifeloopError, Problem

# letters, digits, CJK ideographs (branch and RM names), dot, underscore, hyphen
_UNSAFE = re.compile(r"[^0-9A-Za-z_.\-\u4e00-\u9fff]")
MAX_PART = 64


class UnsafePathError(LifeloopError):
    """A path would leave the folder it must stay in."""


def safe_part(text: str) -> str:
    """``text`` as one safe file-name component (the same text always gives the same name).

    Unsafe characters become ``_``; leading dots and ``..`` are removed. When anything changed, or
    the name was cut to fit, a short hash of the original is appended, so ``a/b`` and ``a_b`` differ.
    """
    cleaned = _UNSAFE.sub("_", text).replace("..", "_").lstrip(".")[:MAX_PART] or "_"
    if cleaned == text:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def inside(folder: str | Path, *parts: str) -> Path:
    """``folder/part/...`` checked to resolve inside ``folder`` (symlinks followed), else refused."""
    base = Path(folder).resolve()
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(base):
        raise UnsafePathError(f"refused to write {'/'.join(parts)!r}: it resolves outside {base}",
                              problems=[Problem("path outside its folder", file=str(base))],
                              hint="names built from data must stay inside their folder; check for '..' or a "
                                   "symbolic link in the folder")
    return path


def within(path: Path, roots: list[Path]) -> bool:
    """Whether ``path`` (resolved, symlinks followed) lies inside one of ``roots``."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(r.resolve()) for r in roots)
