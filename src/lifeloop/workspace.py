"""A workspace is a folder: ``lifeloop.yaml``, ``config/``, ``lake/``."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from lifeloop.config.loader import load_model
from lifeloop.config.workspace import WorkspaceConfig
from lifeloop.errors import WorkspaceError
from lifeloop.store.keys import FileKeyManager

WORKSPACE_FILE = "lifeloop.yaml"
TEMPLATES = ("bank",)


def template_root(template: str = "bank") -> Path:
    """The packaged folder of a workspace template."""
    if template not in TEMPLATES:
        raise WorkspaceError(f"unknown template {template!r}", hint=f"choose one of: {', '.join(TEMPLATES)}")
    return Path(str(resources.files("lifeloop") / "templates" / template))


def init_workspace(directory: str | Path, template: str = "bank", force: bool = False) -> list[Path]:
    """Write ``lifeloop.yaml`` and ``config/`` from a template; return the files written.

    Refuses to overwrite an existing workspace unless ``force`` (then only template files are
    replaced; the lake and the database are never touched).
    """
    target = Path(directory)
    if (target / WORKSPACE_FILE).exists() and not force:
        raise WorkspaceError(f"{target / WORKSPACE_FILE} already exists",
                             hint="use another folder, or --force to rewrite the template files (data is kept)")
    src = template_root(template)
    (target / "config").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for path in sorted(src.rglob("*")):
        if path.is_dir() or path.name.startswith(("_", ".")) or path.suffix == ".pyc":
            continue
        dest = target / path.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        written.append(dest)
    key_file = create_key_file(target)
    return written + ([key_file] if key_file else [])


def create_key_file(target: Path) -> Path | None:
    """The embedded key file (0600) of a workspace whose lifeloop.yaml asks for one and has none yet."""
    keys = load_workspace(target).keys
    path = target / keys.path
    if keys.provider != "file" or path.exists():
        return None
    FileKeyManager.create(path)
    return path


def load_workspace(directory: Path) -> WorkspaceConfig:
    """Read and validate ``lifeloop.yaml`` in ``directory``."""
    path = directory / WORKSPACE_FILE
    if not path.exists():
        raise WorkspaceError(f"no Lifeloop workspace at {directory} ({WORKSPACE_FILE} not found)",
                             hint="run `lifeloop init DIR`, or pass --workspace / set LIFELOOP_WORKSPACE")
    config, _ = load_model(WorkspaceConfig, path)
    return config
