"""``lifeloop``: thin commands over the Context facade. Heavy imports happen inside commands."""

from __future__ import annotations

import datetime as dt
import signal
import sys
from pathlib import Path

import typer

from lifeloop.cli.audit import audit_app
from lifeloop.cli.check import check_command
from lifeloop.cli.consent import register as register_consent
from lifeloop.cli.customers import register as register_customers
from lifeloop.cli.demo import LOOP_DAYS, run_demo
from lifeloop.cli.events import events_app, serve_command
from lifeloop.cli.insight import clusters_command, customer_command, insight_command, transitions_command
from lifeloop.cli.keys import keys_app
from lifeloop.cli.models import models_app
from lifeloop.cli.outbox import outbox_app
from lifeloop.cli.render import print_feature_summary, print_ingest, print_steps
from lifeloop.cli.report import report_command
from lifeloop.cli.simulator import describe_day, progress_callback, read_contacts
from lifeloop.cli.strategies import strategies_app
from lifeloop.cli.users import register as register_users
from lifeloop.cli.why import why_command
from lifeloop.context import Context
from lifeloop.data.simulator import SimulatedBank
from lifeloop.data.simulator import simulate as run_simulation
from lifeloop.errors import Interrupted, LifeloopError
from lifeloop.insight.money import workspace_money_tags
from lifeloop.review.board import print_board
from lifeloop.review.kpis_render import kpis_command
from lifeloop.review.render import evaluation_json, print_evaluation
from lifeloop.store.ops.database import safe_url
from lifeloop.store.ops.migrations import current, head, upgrade, upgrade_sql
from lifeloop.workspace import init_workspace

app = typer.Typer(
    name="lifeloop",
    help="Lifeloop: customer lifecycle operations for retail banks (insight -> strategy -> execution -> review).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state: dict[str, object] = {"workspace": None, "debug": False}


@app.callback()
def _main(
    workspace: Path | None = typer.Option(None, "--workspace", "-w", envvar="LIFELOOP_WORKSPACE",
                                             help="Workspace folder (default: current folder)."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
) -> None:
    _state["workspace"] = workspace
    _state["debug"] = debug


def parse_date(value: str | None, option: str = "--as-of") -> dt.date | None:
    """YYYY-MM-DD -> date, with a clear error naming the option."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise LifeloopError(f"{option} {value!r} is not a date",
                            hint="write dates as YYYY-MM-DD, e.g. 2024-06-30") from None


def context(engine: str | None = None):

    return Context(_state["workspace"], engine=engine, debug=bool(_state["debug"]))


def console():
    from rich.console import Console

    # piped or logged output (CI, `make demo | tee`) gets room for the tables instead of rich's 80 columns
    return Console() if sys.stdout.isatty() else Console(width=140)


@app.command()
def init(
    directory: Path = typer.Argument(..., help="Folder for the new workspace."),
    template: str = typer.Option("bank", help="Workspace template."),
    force: bool = typer.Option(False, help="Rewrite template files in an existing workspace (data is kept)."),
) -> None:
    """Create a workspace: lifeloop.yaml and config/ with the default bank template."""

    written = init_workspace(directory, template, force)
    out = console()
    out.print(f"[green]Workspace ready[/] at {directory.resolve()} ({len(written)} files)")
    for path in written:
        out.print(f"  {path.relative_to(directory)}")
    with Context(directory) as ctx:
        first = ctx.bootstrap_owner()
    if first is not None:
        out.print(f"First administrator: {first[0]}, signed in as this OS user (docs/security.md).")
        out.print("Their token, shown once (only its hash is kept):")
        typer.echo(f"  {first[1]}")
    out.print("Next: lifeloop simulate --out extracts/ && lifeloop ingest extracts/")


@app.command()
def ingest(
    source: Path = typer.Argument(..., help="A folder (or file) of CSV / Parquet extracts."),
    mapping: Path | None = typer.Option(None, "--mapping", "-m", help="Mapping YAML (none: canonical extracts)."),
    as_of: str | None = typer.Option(None, "--as-of",
                                     help="As-of date of the batch (default: latest date in the data)."),
) -> None:
    """Read, map, validate and publish a bank's extracts atomically."""

    with context() as ctx:
        report = ctx.ingest(source, mapping, parse_date(as_of), progress=sys.stderr.isatty())
        print_ingest(console(), report)


@app.command()
def run(
    as_of: str = typer.Option(..., "--as-of", help="As-of date, YYYY-MM-DD."),
    steps: str | None = typer.Option(None, "--steps", help="Comma-separated steps (default: all)."),
    engine: str | None = typer.Option(None, "--engine", help="duckdb or spark (default: lifeloop.yaml)."),
    replan: bool = typer.Option(False, "--replan", help="Re-plan a day whose plan was already dispatched."),
    reason: str | None = typer.Option(None, "--reason", help="Why the day is re-planned (kept on the audit log)."),
) -> None:
    """Run the daily steps for one as-of date."""

    if replan and not (reason or "").strip():
        raise LifeloopError("--replan needs --reason TEXT", hint="say why the day is re-planned; it is audited")
    if reason and not replan:
        raise LifeloopError("--reason only applies with --replan", hint="add --replan, or drop --reason")
    names = [s.strip() for s in steps.split(",") if s.strip()] if steps else None
    with context(engine) as ctx:
        results = ctx.run(parse_date(as_of), names, engine, replan_reason=reason.strip() if replan and reason else None)
        print_steps(console(), results)


@app.command()
def check() -> None:
    """Check every config file and rule at once (run before every `run`); exit 1 on errors."""
    with context() as ctx:
        code = check_command(ctx)
    raise typer.Exit(code)


@app.command()
def features(
    as_of: str | None = typer.Option(None, "--as-of", help="As-of date (default: latest published)."),
) -> None:
    """Summarise the published feature snapshot (标签): one row per tag."""

    with context() as ctx:
        print_feature_summary(console(), ctx.features(parse_date(as_of)), workspace_money_tags(ctx.configs))


@app.command()
def insight(
    as_of: str | None = typer.Option(None, "--as-of", help="As-of date (default: latest lifecycle snapshot)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (for the web UI and scripts)."),
) -> None:
    """Customer insight (客户洞察): stages with changes since the previous run, tiers and segments with AUM."""

    with context() as ctx:
        insight_command(ctx, console(), parse_date(as_of), as_json)


@app.command()
def transitions(
    from_date: str = typer.Option(..., "--from", help="Earlier as-of date, YYYY-MM-DD."),
    to_date: str = typer.Option(..., "--to", help="Later as-of date, YYYY-MM-DD."),
    entered: str | None = typer.Option(None, "--entered", help="Entry cohorts: the stage entered (e.g. honeymoon)."),
    reached: str | None = typer.Option(None, "--reached",
                                       help="Entry cohorts: the stage reached by --to (e.g. growing)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    engine: str | None = typer.Option(None, "--engine", help="duckdb or spark (default: lifeloop.yaml)."),
) -> None:
    """Stage-to-stage flows between two dates, the share moving on within 30/90 days, entry cohorts."""

    with context(engine) as ctx:
        transitions_command(ctx, console(), parse_date(from_date, "--from"), parse_date(to_date, "--to"), as_json,
                            entered, reached)


@app.command()
def clusters(
    fit: bool = typer.Option(False, "--fit",
                             help="Re-fit on the latest (or --as-of) feature snapshot; ids are matched "
                                  "to the previous fit."),
    name: list[str] | None = typer.Option(None, "--name",
                                          help='Name a cluster: --name 3="Digital savers" (repeatable).'),
    as_of: str | None = typer.Option(None, "--as-of", help="As-of date (default: the latest clusters snapshot)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Behavioural clusters (聚类分群): profiles in words; re-fit keeping identities; name clusters."""

    with context() as ctx:
        clusters_command(ctx, console(), parse_date(as_of), fit, name or [], as_json)


@app.command()
def customer(
    customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
    as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
    as_of: str | None = typer.Option(None, "--as-of", help="As-of date (default: the latest bank batch)."),
    transactions: int = typer.Option(20, "--transactions", help="Recent transactions to show."),
) -> None:
    """The customer profile (客户档案): attributes masked for your role, holdings, transactions, stages, segments,
    cluster. Only customers in your scope; your roles come from your user (`lifeloop whoami`), and personal
    fields come unmasked only under an unmask grant (`lifeloop unmask`)."""

    with context() as ctx:
        customer_command(ctx, console(), customer_id, as_json=as_json, as_of=parse_date(as_of),
                         transactions=transactions)


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="Folder to write the extracts to."),
    customers: int = typer.Option(2000, "--customers", help="Number of customers."),
    days: int = typer.Option(365, "--days", help="Days of history."),
    seed: int = typer.Option(7, "--seed", help="Random seed (same seed, same bytes)."),
    start: str | None = typer.Option(None, "--start", help="First simulated day (default: 2024-01-01)."),
    format: str = typer.Option("parquet", "--format", help="parquet or csv (canonical CSV: comma, header, UTF-8)."),
    truth: Path | None = typer.Option(None, "--truth", help="Response-truth YAML (default: the built-in one)."),
) -> None:
    """Write a synthetic retail bank's extracts in the canonical model."""

    with progress_callback(sys.stderr.isatty(), "Simulating days") as progress:
        result = run_simulation(out, customers=customers, days=days, seed=seed, start=parse_date(start, "--start"),
                                format=format, truth=truth, progress=progress)
    console().print(result.describe())


@app.command()
def advance(
    out: Path = typer.Option(..., "--out", help="Folder of a simulated bank (written by `lifeloop simulate`)."),
    contacts: Path | None = typer.Option(None, "--contacts",
                                            help="CSV or Parquet: customer_id, offer, channel, treated "
                                                 "(none: no contacts)."),
) -> None:
    """Advance the simulated bank one day with the contacts Lifeloop dispatched; write out/days/DATE/."""

    bank = SimulatedBank.open(out)
    console().print(describe_day(bank.advance(read_contacts(contacts) if contacts else None)))


@app.command()
def demo(
    directory: Path = typer.Option(Path("demo-workspace"), "--dir", help="Workspace folder for the demo."),
    customers: int = typer.Option(20000, "--customers", help="Size of the simulated bank."),
    days: int = typer.Option(400, "--days", help="Days of simulated history."),
    seed: int = typer.Option(7, "--seed", help="Random seed."),
    loop_days: int = typer.Option(LOOP_DAYS, "--loop-days",
                                  help="Days of the closed loop after the history (three weeks)."),
) -> None:
    """The whole loop on a simulated bank: insight, strategy, weeks of execution, then the review and its report."""

    run_demo(console(), directory, customers=customers, days=days, seed=seed, loop_days=loop_days)


@app.command()
def evaluate(
    strategy: list[str] | None = typer.Argument(None,
                                                help="Strategy ids to evaluate from the lake (default: every "
                                                     "strategy with entries)."),
    as_of: str | None = typer.Option(None, "--as-of",
                                     help="Use the outcomes snapshot of this day, YYYY-MM-DD (default: the newest)."),
    interim: bool = typer.Option(False, "--interim",
                                 help="Include entries whose window is still running, measured to date."),
    from_file: Path | None = typer.Option(None, "--from-file",
                                          help="CSV or Parquet: one row per customer with its arm and outcomes."),
    arm: str | None = typer.Option(None, "--arm", help="The column naming each customer's arm (cell)."),
    control: str | None = typer.Option(None, "--control", help="The arm value of the control (holdout) customers."),
    outcome: list[str] | None = typer.Option(
        None, "--outcome", help="An outcome column: 0/1 for a conversion, or an amount (repeatable)."),
    money: list[str] | None = typer.Option(None, "--money",
                                           help="A money outcome column: incremental money and ROI (repeatable)."),
    pre: str | None = typer.Option(None, "--pre", help="Pre-period covariate column, for CUPED variance reduction."),
    cost_per_contact: float | None = typer.Option(None, "--cost-per-contact",
                                                  help="The channel's cost of one contact, for ROI."),
    holdout: float | None = typer.Option(None, "--holdout",
                                         help="The planned control share (e.g. 0.1), for the sample-ratio check."),
    min_per_arm: int = typer.Option(30, "--min-per-arm", help="Refuse arms with fewer customers than this."),
    encoding: str | None = typer.Option(None, "--encoding", help="The CSV file's encoding, e.g. gbk (default: utf-8)."),
    as_json: bool = typer.Option(False, "--json", help="Print the evaluation as JSON (fields in docs/review.md)."),
) -> None:
    """Post-evaluation (策略后评估): uplift with 95% intervals, sample-ratio check, CUPED, incremental money, ROI."""
    import json

    if from_file is None:
        file_only = [opt for opt, value in (("--arm", arm), ("--control", control), ("--outcome", outcome),
                                            ("--money", money), ("--pre", pre), ("--encoding", encoding))
                     if value]
        if file_only:
            raise LifeloopError(f"{file_only[0]} only applies with --from-file",
                                hint="lifeloop evaluate [STRATEGY ...] reads the lake's outcomes; add --from-file FILE "
                                     "to evaluate a campaign run elsewhere")

        with context() as ctx:
            doc = ctx.evaluate(strategy or [], as_of=parse_date(as_of), interim=interim)
        if as_json:
            typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            print_board(console(), doc, detail=bool(strategy))
        return
    if strategy:
        raise LifeloopError("give either STRATEGY ids or --from-file, not both", hint="drop the strategy id")
    missing = [opt for opt, value in (("--arm", arm), ("--control", control)) if value is None]
    if missing or not (outcome or money):
        missing += [] if outcome or money else ["--outcome or --money"]
        raise LifeloopError(f"--from-file needs {', '.join(missing)}",
                            hint="e.g. lifeloop evaluate --from-file results.csv --arm cell --control "
                                 "holdout --outcome bought")

    with context() as ctx:
        result = ctx.evaluate_file(from_file, arm=arm, control=control, outcomes=outcome or [], money=money or [],
                                   pre=pre, cost_per_contact=cost_per_contact, holdout=holdout, min_per_arm=min_per_arm,
                                   encoding=encoding or "utf-8")
    if as_json:
        typer.echo(json.dumps(evaluation_json(result), indent=2, ensure_ascii=False))
    else:
        print_evaluation(console(), result)


@app.command()
def kpis(
    from_date: str = typer.Option(..., "--from", help="First as-of date of the window, YYYY-MM-DD."),
    to_date: str = typer.Option(..., "--to", help="Last as-of date of the window, YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="Print the KPIs as JSON (fields in docs/review.md)."),
    engine: str | None = typer.Option(None, "--engine", help="duckdb or spark (default: lifeloop.yaml)."),
) -> None:
    """Lifecycle KPIs (生命周期经营指标): stage mix, transitions, churn, reactivation, activation, retention, sales."""

    with context(engine) as ctx:
        kpis_command(ctx, console(), parse_date(from_date, "--from"), parse_date(to_date, "--to"), as_json)


@app.command()
def report(
    out: Path = typer.Option(..., "--out", help="The HTML file to write (self-contained: open it anywhere, offline)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Report as of this date (default: the newest published)."),
    from_date: str | None = typer.Option(None, "--from",
                                         help="First day of the KPI window (default: 90 days earlier)."),
    interim: bool = typer.Option(False, "--interim",
                                 help="Board: include entries whose window is still running, measured to date."),
) -> None:
    """The HTML report (经营回检报告): strategy board, lifecycle flows, KPIs and map coverage in one offline file."""

    with context() as ctx:
        report_command(ctx, console(), out, parse_date(as_of), parse_date(from_date, "--from"), interim)


app.add_typer(strategies_app(context, console, parse_date), name="strategies")


@app.command()
def why(
    customer_id: str = typer.Argument(..., help="The customer number, e.g. C000000064."),
    as_of: str = typer.Option(..., "--as-of", help="The planned day to explain, YYYY-MM-DD."),
    as_json: bool = typer.Option(False, "--json", help="Print the explanation as JSON."),
) -> None:
    """Why (决策回放): every decision about a customer on a day, replayed from that day's stored snapshots."""

    with context() as ctx:
        why_command(ctx, console(), customer_id, parse_date(as_of), as_json)


@app.command()
def dispatch(
    as_of: str = typer.Option(..., "--as-of", help="As-of date of the lists, YYYY-MM-DD."),
    enqueue_only: bool = typer.Option(False, "--enqueue-only", help="Put the lists in the outbox; send nothing."),
) -> None:
    """Send the day's lists: outbox (once per contact), consent re-checked, delivered through the channels."""
    with context() as ctx:
        summary = ctx.dispatch(parse_date(as_of), drain=not enqueue_only)
    out = console()
    for line in summary.lines():
        out.print(line)


@app.command()
def worklist(
    rm_id: str | None = typer.Argument(None, help="The relationship manager's code (e.g. RM00002); default: your own "
                                                  "(branch managers and head office name the RM)."),
    on: str | None = typer.Option(None, "--on", help="Only tasks due by this date, YYYY-MM-DD."),
    export: Path | None = typer.Option(None, "--export", help="Also write it to a .csv or .xlsx file."),
) -> None:
    """A relationship manager's worklist (客户经理任务): their own customers, most important first, with scripts.

    Yours without an RM id; another RM's only as their branch manager or head office. Masked for your role;
    an export is audited (file, sha256, rows)."""
    from rich.table import Table

    day = parse_date(on, "--on")
    with context() as ctx:
        rm_id = rm_id or (ctx.principal.rm_ids[0] if len(ctx.principal.rm_ids) == 1 else None)
        rows = ctx.worklist(rm_id, day)
        exported = ctx.export_worklist(export, rm_id, day) if export is not None else None
    table = Table(title=f"{rm_id}: {len(rows)} open tasks")
    for column in ("priority", "due", "customer", "name", "mobile", "strategy / wave", "script"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(str(r["priority"]), r["due_on"].isoformat(), r["customer_id"], r["name"] or "",
                      r["mobile"] or "", f"{r['strategy']} / {r['wave']}", r["script"])
    out = console()
    out.print(table)
    if exported is not None:
        out.print(f"written {exported['path']} ({exported['rows']} rows, sha256 {exported['sha256'][:12]}..., "
                  "audited)")


feedback_app = typer.Typer(help="Outcomes of contacts (营销表单): reached, refused, purchased, referrals ...",
                           no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("import")
def feedback_import(
    file: Path = typer.Argument(..., help="CSV: contact_id or contact_key, outcome, recorded_at, recorded_by, ..."),
) -> None:
    """Import outcomes from a CSV, all or nothing; importing the same file again changes nothing."""
    with context() as ctx:
        result = ctx.import_feedback(file)
    state = " (already imported: nothing changed)" if result.replayed else ""
    console().print(f"{result.file}: {result.rows:,} rows, {result.recorded:,} recorded, {result.skipped:,} "
                    f"already there; {result.refusals:,} refusals, {result.referrals:,} referrals{state}")


register_consent(app, context, console, parse_date)
register_users(app, context, console)
register_customers(app, context, console)
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app(context, console, parse_date), name="models")
app.add_typer(outbox_app, name="outbox")
app.add_typer(events_app, name="events")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Run the web app (sign in, strategy board, RM workbench; docs/web.md) and POST /events (service token,
    rate-limited, decided within seconds)."""
    serve_command(context, host, port)

db_app = typer.Typer(help="The operations database: contact history, outbox, feedback, consent, tasks, audit.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    sql: bool = typer.Option(False, "--sql", help="Print the SQL instead of running it (for a DBA to review)."),
) -> None:
    """Create the operations database's tables, or migrate them to this version of Lifeloop."""

    url = context().database_url
    if sql:
        typer.echo(upgrade_sql(url))
        return
    console().print(f"operations database {safe_url(url)} is at revision {upgrade(url)}")


@db_app.command("current")
def db_current() -> None:
    """Show the operations database's revision and the one this version of Lifeloop needs."""

    url = context().database_url
    at, expected = current(url), head()
    state = "up to date" if at == expected else "behind: run `lifeloop db upgrade`"
    console().print(f"operations database {safe_url(url)}: revision {at or 'none'}, "
                    f"this Lifeloop needs {expected} ({state})")


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C becomes a Lifeloop error, so that it reaches main() (Click would print 'Aborted!' and exit 1)."""
    raise Interrupted("stopped by Ctrl-C: nothing half-written was published")


def main() -> None:
    """Console entry point: translate Lifeloop errors once, into 'Error: ...' and exit code 1 (130 for Ctrl-C)."""
    signal.signal(signal.SIGINT, _interrupt)
    try:
        app()
    except LifeloopError as exc:
        if _state["debug"]:
            raise
        from rich.console import Console
        from rich.markup import escape

        if isinstance(exc, Interrupted):  # one line: which step, and that nothing of it was published
            Console(stderr=True, soft_wrap=True).print(f"[bold yellow]Interrupted:[/] {escape(exc.message)}")
        else:
            # soft_wrap: an error names files and lines; never break a path across lines
            Console(stderr=True, soft_wrap=True).print(f"[bold red]Error:[/] {escape(exc.render())}")
        sys.exit(exc.exit_code)
