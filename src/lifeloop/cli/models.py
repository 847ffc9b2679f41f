"""``lifeloop models ...`` (模型货架): list, fit, show, promote and retire models; thin commands over Context."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from lifeloop.models.from_file import fit_from_file


def models_app(context: Callable[[], Any], console: Callable[[], Any], parse_date: Callable[..., Any]) -> typer.Typer:
    """The ``models`` command group, bound to the main app's workspace, console and date parsing."""
    app = typer.Typer(help="Models on a shelf (模型货架): fit, evaluate, promote, challenge, roll back, retire.",
                      no_args_is_help=True)

    @app.command("list")
    def list_models() -> None:
        """Declared and fitted models, their versions and the active one."""
        with context() as ctx:
            rows = ctx.models()
        for r in rows:
            versions = ", ".join(r["versions"]) or "not fitted"
            c = r.get("challenger")
            how = ("shadow" if not c["share"] else f"share {c['share']:g}") if c else ""
            challenger = f"; challenger: {c['version']} ({how})" if c else ""
            console().print(f"{r['name']}: {versions}; active: {r['active'] or 'none'}{challenger}"
                            + ("" if r["declared"] else " (no longer declared in config/models.yaml)"))

    @app.command("fit")
    def fit(name: str = typer.Argument(None, help="A model declared in config/models.yaml (built in: churn)."),
            as_of: str = typer.Option(None, "--as-of", help="Fit on data up to this date (YYYY-MM-DD)."),
            from_file: Path = typer.Option(None, "--from-file", help="Train and evaluate on a CSV or Parquet "
                                           "file instead (nothing is saved)."),
            target: str = typer.Option(None, "--target", help="With --from-file: the yes/no column to predict."),
            exclude: list[str] = typer.Option([], "--exclude", help="With --from-file: a column not to use "
                                              "(repeatable)."),
            time_column: str = typer.Option(None, "--time-column", help="With --from-file: test on the latest "
                                            "30% of rows by this column."),
            positive: str = typer.Option(None, "--positive", help="With --from-file: the target's positive value "
                                         "(needed unless it is boolean or 0/1)."),
            threads: int = typer.Option(None, "--threads", min=1, help="With --from-file: CPU threads to fit with "
                                        "(default: all; fewer is faster on a busy machine).")) -> None:
        """Fit a model as of D: validated out of time, saved as its next version (not yet active).

        With --from-file FILE --target COL: train and evaluate on any table, printing AUC and PR-AUC with
        95% intervals and a lift table."""
        if from_file is not None:
            if target is None:
                raise typer.BadParameter("--from-file needs --target COL (the yes/no column to predict)")
            print_from_file(console(), fit_from_file(from_file, target, tuple(exclude), time_column, positive,
                                                      threads=threads))
            return
        if name is None or as_of is None:
            raise typer.BadParameter("give a declared model and --as-of DATE (or --from-file FILE --target COL)")
        day = parse_date(as_of)
        with context() as ctx:
            m = ctx.fit_model(name, day)
        console().print(f"{m['name']} {m['version']}: {m['label']}; trained on {trained_on(m)} "
                        f"({m['training_rows']:,} rows, {m['training_positives']:,} positive)")
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
        contender = m.get("challenger")
        against = (f"; challenger: {contender['version']} "
                   + (f"for {contender['share']:.0%} of customers" if contender["share"] else "in shadow")
                   if contender else "; no challenger")
        kind, label = m.get("kind", m["spec"]["kind"]), m.get("label", "no label recorded")
        console().print(f"{m['name']} {m['version']} ({m['estimator']}, {kind}): {label}; "
                        f"active version: {m['active'] or 'none'}{against}")
        if "training_window" in m:     # a version saved by hand (registry.save) may lack the fitting's record
            console().print(f"trained on {trained_on(m)}; data hash {m['data_hash']}; seed {m['seed']}")
        if "validation" in m:
            print_validation(console(), m["validation"])
        for h in m["history"]:
            console().print(f"  {h['at']} {h['action']} {h['version']} by {h['actor']}: {h['reason']}")

    @app.command("monitor")
    def monitor(name: str = typer.Argument(...),
                as_of: str = typer.Option(..., "--as-of", help="Monitor the features of this date (YYYY-MM-DD)."),
                version: str = typer.Option(None, "--version", help="Default: the active version, else the newest."),
                as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
        """Input and score drift (PSI: < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant), missing inputs,
        and calibration of past scores whose outcomes are known."""
        day = parse_date(as_of)
        with context() as ctx:
            r = ctx.monitor_model(name, day, version)
        if as_json:
            console().print_json(json.dumps(r, ensure_ascii=False))
            return
        print_monitor(console(), r)

    @app.command("evaluate")
    def evaluate(name: str = typer.Argument(...),
                 version: str = typer.Option(None, "--version", help="Default: the active version, else the newest."),
                 as_of: str = typer.Option(None, "--as-of", help="Outcomes known by this date (default: the newest "
                                           "features snapshot)."),
                 as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
        """AUC and PR-AUC with 95% intervals, top-decile lift and a lift table on the newest closed outcome
        window, next to the 'declining' rule (in-sample figures are labelled)."""
        day = parse_date(as_of) if as_of else None
        with context() as ctx:
            r = ctx.evaluate_model(name, version, day)
        if as_json:
            console().print_json(json.dumps(r, ensure_ascii=False))
            return
        print_evaluation(console(), r)

    @app.command("promote")
    def promote(name: str = typer.Argument(...), version: str = typer.Argument(...),
                reason: str = typer.Option(..., "--reason", help="On which evidence (kept and audited).")) -> None:
        """Make a fitted version the active one: the scores step uses it from the next run."""
        with context() as ctx:
            ctx.promote_model(name, version, reason)
        console().print(f"{name} {version} is active (audited)")

    @app.command("challenge")
    def challenge(name: str = typer.Argument(...), version: str = typer.Argument(...),
                  share: float = typer.Option(0.0, "--share", min=0.0, max=0.99,
                                              help="Share of customers whose rules see its score (0: shadow)."),
                  reason: str = typer.Option(..., "--reason", help="Why (kept and audited).")) -> None:
        """Score a fitted version next to the champion: in shadow (scores kept in shadow.parquet, read by no
        rule) or, with --share, for that share of customers (a hash of the customer id picks them)."""
        with context() as ctx:
            ctx.challenge_model(name, version, share, reason)
        how = f"for {share:.0%} of customers" if share else "in shadow"
        console().print(f"{name} {version} challenges the champion {how} from the next run (audited)")

    @app.command("end-challenge")
    def end_challenge(name: str = typer.Argument(...),
                      reason: str = typer.Option(..., "--reason", help="Why (kept and audited).")) -> None:
        """Stop scoring a model's challenger."""
        with context() as ctx:
            entry = ctx.end_challenge(name, reason)
        console().print(f"{name} {entry['version']} no longer challenges (audited)")

    @app.command("rollback")
    def rollback(name: str = typer.Argument(...),
                 reason: str = typer.Option(..., "--reason", help="Why (kept and audited).")) -> None:
        """Restore the previous champion: the next scores are the ones it gave before it was replaced."""
        with context() as ctx:
            entry = ctx.rollback_model(name, reason)
        console().print(f"{name} {entry['version']} is active again in place of {entry['replaced']} (audited)")

    @app.command("retire")
    def retire(name: str = typer.Argument(...), version: str = typer.Argument(...),
               reason: str = typer.Option(..., "--reason", help="Why (kept and audited).")) -> None:
        """Retire a version for good; an active one stops scoring."""
        with context() as ctx:
            ctx.retire_model(name, version, reason)
        console().print(f"{name} {version} is retired (audited)")

    return app


def trained_on(m: dict[str, Any]) -> str:
    """The training window in words: a feature snapshot and its outcomes, or an offer's entries."""
    w = m["training_window"]
    if "calibration_end" in w:
        return f"transactions until {w['calibration_end']}, validated on those until {w['holdout_until']}"
    if "features_as_of" in w:
        return f"features as of {w['features_as_of']} with outcomes until {w['outcomes_until']}"
    return (f"{w['entries']:,} entries of offer {m.get('offer')} from {w['entries_from']} to {w['entries_to']} "
            f"({w['treated']:,} treated, {w['control']:,} control; outcomes as of {w['outcomes_as_of']})")


def print_validation(console: Any, validation: dict[str, Any]) -> None:
    """Out-of-time figures of the model next to the ``declining`` rule (offer models: Qini or AUC)."""
    if "not_measured" in validation:
        console.print(f"Validation: not measured ({validation['not_measured']})")
        return
    if "holdout_weeks" in validation:   # a CLV model: predicted against observed repeat transactions
        v = validation
        console.print(f"Holdout validation ({v['holdout_weeks']:.1f} weeks, {v['customers']:,} customers): predicted "
                      f"{v['predicted_transactions']:,.1f} repeat transactions, observed "
                      f"{v['observed_transactions']:,}; "
                      f"mean absolute error {v['mean_absolute_error']:.3f}, correlation {v['correlation']}; mean "
                      f"P(alive) {v['mean_p_alive']:.3f}, share transacting {v['share_transacting_in_holdout']:.3f}")
        return
    if "method" in validation:
        m = validation["model"]
        console.print(f"Validation on held-out entries ({validation['method']}; {validation['test']['entries']:,} "
                      "entries):")
        keys = ("qini", "auuc_vs_random", "uplift_top30") if "qini" in m else ("auc", "pr_auc", "top_decile_lift")
        console.print("  model " + "  ".join(f"{k} {m[k]['value']:.4f} [{m[k]['ci95'][0]:.4f}, {m[k]['ci95'][1]:.4f}]"
                                             for k in keys))
        return
    console.print(f"Out-of-time validation: trained on {validation['train']['features_as_of']}, tested on "
                  f"{validation['test']['features_as_of']} ({validation['model']['customers']:,} customers, "
                  f"{validation['model']['positives']:,} positive)")
    for who, key in (("model", "model"), ("rule 'declining'", "rule_declining")):
        m = validation[key]
        console.print(f"  {who:<17} " + "  ".join(
            f"{k} {m[k]['value']:.3f} [{m[k]['ci95'][0]:.3f}, {m[k]['ci95'][1]:.3f}]"
            for k in ("auc", "pr_auc", "top_decile_lift")))


def print_evaluation(console: Any, r: dict[str, Any]) -> None:
    """A version measured on the newest closed window, next to the declining rule, with its lift table."""
    w = r["window"]
    console.print(f"{r['model']} {r['version']}: {r['label']}; features of {w['features_as_of']}, outcomes until "
                  f"{w['outcomes_until']} ({r['metrics']['customers']:,} customers, {r['metrics']['positives']:,} "
                  f"positive)")
    if r["in_sample"]:
        console.print(f"[bold yellow]in sample[/bold yellow]: the version was trained on features of "
                      f"{r['trained_on']['features_as_of']}; an out-of-time reading needs a later window")
    console.print("model:")
    print_metrics(console, r["metrics"])
    console.print("rule (stage declining at the window's start):")
    print_metrics(console, r["rule_declining"])
    print_lift(console, r["lift"])


def print_monitor(console: Any, r: dict[str, Any]) -> None:
    """A monitoring report: drift per input and of the score, calibration over time, alerts."""
    console.print(f"{r['model']} {r['version']}: features of {r['features_as_of']} against training "
                  f"({r['reference']})")
    score = r["score"]
    console.print(f"  score PSI {score['psi']:.3f} ({score['reading']})" if score else "  score: cannot be computed")
    for i in r["inputs"]:
        if i["psi"] is None:
            console.print(f"  {i['feature']:<24} absent from the day's features")
            continue
        console.print(f"  {i['feature']:<24} PSI {i['psi']:.3f} ({i['reading']}); missing {i['missing_now']:.1%} "
                      f"(training {i['missing_reference']:.1%})")
    for c in r["calibration"]:
        lo, hi = c["observed_ci95"]
        console.print(f"  scores of {c['scored_on']}: predicted {c['predicted']:.3f}, observed {c['observed']:.3f} "
                      f"[{lo:.3f}, {hi:.3f}] over {c['customers']:,} customers"
                      + ("" if c["calibrated"] else "  << outside"))
    if not r["calibration"]:
        console.print("  calibration: no scores old enough for their outcomes to be known")
    for a in r["alerts"]:
        console.print(f"[bold red]ALERT[/bold red] {a}")
    if not r["alerts"]:
        console.print("No alert.")


def print_from_file(console: Any, r: dict[str, Any]) -> None:
    """The bring-your-own-table report: data, split, AUC and PR-AUC with intervals, the lift table."""
    console.print(f"{r['file']}: {r['rows']:,} rows with a target ({r['rows_without_target']:,} without, left out); "
                  f"{r['target']} positive in {r['positive_rate']:.1%}")
    console.print(f"inputs ({len(r['inputs'])}): {', '.join(r['inputs'])}"
                  + (f"; categories: {', '.join(r['categorical'])}" if r["categorical"] else ""))
    for c, why in r["left_out"].items():
        console.print(f"left out {c}: {why}")
    console.print(f"test set: {r['split']} ({r['test_rows']:,} rows; trained on {r['train_rows']:,})")
    print_metrics(console, r["metrics"])
    print_lift(console, r["lift"])


def print_metrics(console: Any, m: dict[str, Any]) -> None:
    """AUC, PR-AUC and top-decile lift with their 95% intervals."""
    for k, label in (("auc", "AUC"), ("pr_auc", "PR-AUC"), ("top_decile_lift", "top-decile lift")):
        console.print(f"  {label:<16} {m[k]['value']:.3f}  95% CI [{m[k]['ci95'][0]:.3f}, {m[k]['ci95'][1]:.3f}]")


def print_lift(console: Any, lift: list[dict[str, Any]]) -> None:
    """The lift table by tenth of customers (highest scores first)."""
    console.print("  decile  customers  positives   rate    lift  cumulative capture")
    for row in lift:
        console.print(f"  {row['decile']:>6}  {row['customers']:>9,}  {row['positives']:>9,}  {row['rate']:>6.1%}  "
                      f"{row['lift']:>5.2f}  {row['cumulative_capture']:>18.1%}")
