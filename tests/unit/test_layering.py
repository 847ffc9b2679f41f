"""Dependencies point one way: cli/api -> context -> pipeline -> loop packages -> engine, store, config, data."""

import ast
from pathlib import Path

from tests import layers

SRC = Path(__file__).resolve().parents[2] / "src" / "lifeloop"
LOOP = ("insight", "strategy", "execution", "review", "models", "engine", "store", "config", "data")
HEAVY = ("pyspark", "sklearn", "scipy", "lightgbm", "sqlalchemy", "alembic", "duckdb", "pandas", "statsmodels")


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


def test_there_is_no_import_circle_among_lifeloops_modules():
    edges, _ = layers.scan(SRC.parent)
    assert layers.circles(edges) == []


def test_no_module_imports_a_higher_layer_or_a_peer_kept_apart():
    edges, _ = layers.scan(SRC.parent)
    assert layers.upward(edges) == []


def test_lifeloops_own_modules_are_never_imported_inside_functions():
    _, inside = layers.scan(SRC.parent)
    assert inside == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "lifeloop" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_the_layer_check_finds_a_circle_an_upward_import_and_an_import_inside_a_function(tmp_path):
    src = _package(tmp_path, {
        "__init__.py": "",
        "insight/__init__.py": "",
        "insight/a.py": "from lifeloop.insight import b\n",
        "insight/b.py": "from lifeloop.insight import a\nfrom lifeloop.strategy import plan\n",
        "strategy/__init__.py": "",
        "strategy/plan.py": "def f():\n    from lifeloop.insight import a\n",
        "review/__init__.py": "",
        "review/x.py": "from lifeloop.execution import y\n",
        "execution/__init__.py": "",
        "execution/y.py": "",
        "surprise/__init__.py": "",
        "surprise/z.py": "",
    })
    edges, inside = layers.scan(src)
    assert layers.circles(edges) == [["lifeloop.insight.a", "lifeloop.insight.b"]]
    found = layers.upward(edges)
    assert "lifeloop.insight.b imports lifeloop.strategy.plan (layer strategy is above insight)" in found
    assert "lifeloop.review.x imports lifeloop.execution.y (review and execution stay apart)" in found
    assert "lifeloop.surprise.z: its package 'surprise' has no layer (add it to tests/layers.py)" in found
    assert not any(f.startswith(("lifeloop.insight.a ", "lifeloop.strategy.plan ")) for f in found)
    assert inside == ["lifeloop/strategy/plan.py:2 from lifeloop.insight import a"]
