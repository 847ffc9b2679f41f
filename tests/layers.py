"""Import facts of a package tree, for the layer tests: module-level edges, function-level imports, layers.

Layers, lowest first (a module may import its own layer or a lower one, never a higher one):

    errors, settings, contract, workspace, config, engine, store, data   the ground the loop stands on
    insight, models                                                         客户洞察, 模型 (neither imports the other)
    strategy                                                                策略制定
    execution, review                                                       策略执行, 经营回检 (never each other)
    pipeline, preflight                                                     the daily run and its up-front checks
    context                                                                 the one facade
    cli, api                                                                the entry points
"""

from __future__ import annotations

import ast
from pathlib import Path

LAYERS: dict[str, int] = {
    "errors": 0, "settings": 0, "contract": 0, "workspace": 0, "config": 0, "engine": 0, "store": 0, "data": 0,
    "insight": 1, "models": 1, "strategy": 2, "execution": 3, "review": 3, "realtime": 3,
    "pipeline": 4, "preflight": 4, "context": 5,
    "cli": 6, "api": 6, "web": 6, "__main__": 6,
}
PEERS_APART = {frozenset({"execution", "review"}), frozenset({"insight", "models"})}   # same layer, kept apart


def modules(src: Path, package: str = "lifeloop") -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``src/<package>``."""
    out = {}
    for f in (src / package).rglob("*.py"):
        parts = list(f.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _targets(node: ast.Import | ast.ImportFrom, pkg: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        up = pkg.split(".")
        up = up[: len(up) - (node.level - 1)]
        base = ".".join(up + ([base] if base else []))
    return [base + "." + a.name for a in node.names] + [base]


def scan(src: Path, package: str = "lifeloop") -> tuple[dict[str, set[str]], list[str]]:
    """Module-level import edges between the package's modules, and every function-level import of one."""
    mods = modules(src, package)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    in_functions: list[str] = []
    for m, f in mods.items():
        tree = ast.parse(f.read_text(encoding="utf-8"))
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]

        def walk(node: ast.AST, in_func: bool, type_only: bool, m: str = m, f: Path = f, pkg: str = pkg) -> None:
            for child in ast.iter_child_nodes(node):
                func = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                tc = type_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    own = [t for t in _targets(child, pkg) if t.split(".")[0] == package]
                    if own and in_func:
                        in_functions.append(f"{f.relative_to(src)}:{child.lineno} {ast.unparse(child)}")
                    elif own and not tc:
                        for t in own:
                            r = resolve(t)
                            if r and r != m and not m.startswith(r + ".") and r != package:
                                edges[m].add(r)
                walk(child, func, tc)

        walk(tree, False, False)
    return edges, in_functions


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        # iterative enough for this tree's depth; recursion limit is not a concern at a few hundred modules
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found, key=len, reverse=True)


def layer_of(module: str) -> tuple[str, int | None]:
    """The top-level part of a module (``strategy`` for ``lifeloop.strategy.plan``) and its layer."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    return top, LAYERS.get(top)


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports of a higher layer, of a peer kept apart, or from a module whose layer is not declared."""
    out = []
    for m, targets in sorted(edges.items()):
        top, level = layer_of(m)
        if level is None:
            if "." in m:
                out.append(f"{m}: its package {top!r} has no layer (add it to tests/layers.py)")
            continue
        for t in sorted(targets):
            ttop, tlevel = layer_of(t)
            if tlevel is None:
                continue
            if tlevel > level:
                out.append(f"{m} imports {t} (layer {ttop} is above {top})")
            elif top != ttop and frozenset({top, ttop}) in PEERS_APART:
                out.append(f"{m} imports {t} ({top} and {ttop} stay apart)")
    return out
