"""Rich rendering of the simulated bank's results (``lifeloop simulate`` and ``lifeloop advance``)."""

from __future__ import annotations

from typing import Any

from lifeloop.errors import DataError


def describe_day(day: Any) -> Any:
    """One advanced day: rows per table and conversions by source."""
    from rich.table import Table

    t = Table(title=f"Advanced to {day.date}: {day.contacts:,} contacts -> {day.folder}", title_justify="left")
    t.add_column("what")
    t.add_column("count", justify="right")
    for name, v in day.rows.items():
        t.add_row(f"rows {name}", f"{v:,}")
    for name, v in day.conversions.items():
        t.add_row(f"conversions {name}", f"{v:,}")
    t.caption = f"next: lifeloop ingest {day.folder} --as-of {day.date}"
    return t


def read_contacts(path: Any) -> Any:
    """Read a contacts file (CSV or Parquet) as an Arrow table."""
    from pathlib import Path


    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: contacts file not found", hint="pass a CSV or Parquet file with customer_id, offer, "
                                                             "channel, treated")
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p)
    import pyarrow as pa
    import pyarrow.csv as pcsv

    opts = pcsv.ConvertOptions(column_types={"customer_id": pa.string(), "offer": pa.string(),
                                             "channel": pa.string(), "treated": pa.bool_()})
    return pcsv.read_csv(p, convert_options=opts)


class progress_callback:
    """A context manager giving ``progress(done, total)``: a rich progress bar on a terminal, else nothing."""

    def __init__(self, show: bool, label: str):
        self.show, self.label = show, label
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self):
        if not self.show:
            return None
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.__enter__()
        self._task = self._bar.add_task(self.label, total=None)
        return self._update

    def _update(self, done: int, total: int) -> None:
        self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
