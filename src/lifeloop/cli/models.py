"""``lifeloop models ...`` (模型货架): list, fit, show, promote and retire models; thin commands over Context."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer


def models_app(context: Callable[[], Any], console: Callable[[], Any], parse_date: Callable[..., Any]) -> typer.Typer:
    """The ``models`` command group, bound to the main app's workspace, console and date parsing."""
    app = typer.Typer(help="Models on a shelf (模型货架): churn warning with reasons; fit, promote, retire.",
                      no_args_is_help=True)

    @app.command("list")
    def list_models() -> None:
        """Declared and fitted models, their versions and the active one."""
        with context() as ctx:
            rows = ctx.models()
        for r in rows:
            versions = ", ".join(r["versions"]) or "not fitted"
            console().print(f"{r['name']}: {versions}; active: {r['active'] or 'none'}"
                            + ("" if r["declared"] else " (no longer declared in config/models.yaml)"))

    @app.command("fit")
    def fit(name: str = typer.Argument(..., help="A model declared in config/models.yaml (built in: churn)."),
            as_of: str = typer.Option(..., "--as-of", help="Fit on data up to this date (YYYY-MM-DD).")) -> None:
        """Fit a model as of D: validated out of time, saved as its next version (not yet active)."""
        day = parse_date(as_of)
        with context() as ctx:
            m = ctx.fit_model(name, day)
        console().print(f"{m['name']} {m['version']}: {m['label']}; trained on features of "
                        f"{m['training_window']['features_as_of']} ({m['training_rows']:,} customers, "
                        f"{m['training_positives']:,} positive)")
        print_validation(console(), m["validation"])
        console().print(f"Promote it with `lifeloop models promote {m['name']} {m['version']} --reason TEXT`")

    @app.command("show")
    def show(name: str = typer.Argument(...), version: str = typer.Argument(None, help="Default: the newest."),
             as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON.")) -> None:
        """A fitted version's manifest: contract, window, data hash, library versions, metrics, history."""
        with context() as ctx:
            m = ctx.model(name, version)
        if as_json:
            console().print_json(json.dumps(m, ensure_ascii=False))
            return
        console().print(f"{m['name']} {m['version']} ({m['estimator']}, {m['kind']}): {m['label']}; "
                        f"active version: {m['active'] or 'none'}")
        console().print(f"features as of {m['training_window']['features_as_of']}, outcomes until "
                        f"{m['training_window']['outcomes_until']}; data hash {m['data_hash']}; seed {m['seed']}")
        print_validation(console(), m["validation"])
        for h in m["history"]:
            console().print(f"  {h['at']} {h['action']} {h['version']} by {h['actor']}: {h['reason']}")

    @app.command("promote")
    def promote(name: str = typer.Argument(...), version: str = typer.Argument(...),
                reason: str = typer.Option(..., "--reason", help="On which evidence (kept and audited).")) -> None:
        """Make a fitted version the active one: the scores step uses it from the next run."""
        with context() as ctx:
            ctx.promote_model(name, version, reason)
        console().print(f"{name} {version} is active (audited)")

    @app.command("retire")
    def retire(name: str = typer.Argument(...), version: str = typer.Argument(...),
               reason: str = typer.Option(..., "--reason", help="Why (kept and audited).")) -> None:
        """Retire a version for good; an active one stops scoring."""
        with context() as ctx:
            ctx.retire_model(name, version, reason)
        console().print(f"{name} {version} is retired (audited)")

    return app


def print_validation(console: Any, validation: dict[str, Any]) -> None:
    """Out-of-time figures of the model next to the ``declining`` rule."""
    if "not_measured" in validation:
        console.print(f"Validation: not measured ({validation['not_measured']})")
        return
    console.print(f"Out-of-time validation: trained on {validation['train']['features_as_of']}, tested on "
                  f"{validation['test']['features_as_of']} ({validation['model']['customers']:,} customers, "
                  f"{validation['model']['positives']:,} positive)")
    for who, key in (("model", "model"), ("rule 'declining'", "rule_declining")):
        m = validation[key]
        console.print(f"  {who:<17} " + "  ".join(
            f"{k} {m[k]['value']:.3f} [{m[k]['ci95'][0]:.3f}, {m[k]['ci95'][1]:.3f}]"
            for k in ("auc", "pr_auc", "top_decile_lift")))
