"""Dependencies point one way: cli/api -> context -> loop packages -> engine, store, config, data."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "lifeloop"
LOOP = ("insight", "strategy", "execution", "review", "models", "engine", "store", "config", "data")
HEAVY = ("pyspark", "sklearn", "scipy", "lightgbm", "sqlalchemy", "alembic")


def imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node, node.module


def test_loop_packages_never_import_the_cli_or_the_api():
    offenders = []
    for package in LOOP:
        for path in (SRC / package).rglob("*.py"):
            for _, name in imports(path):
                if name.startswith(("lifeloop.cli", "lifeloop.api")):
                    offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert offenders == []


def test_heavy_libraries_are_imported_inside_functions_only():
    offenders = []
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts or path.parent.name == "ops":
            continue  # the ops database package is SQLAlchemy itself, imported only when the database is used
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    if name.split(".")[0] in HEAVY:
                        offenders.append(f"{path.relative_to(SRC)}:{node.lineno} imports {name} at module level")
    assert offenders == []
