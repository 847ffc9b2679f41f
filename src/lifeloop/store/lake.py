"""The lake: Parquet snapshots per area and as-of date, published atomically.

Layout (docs/architecture.md)::

    lake/bank/as_of=YYYY-MM-DD/<table>.parquet   one ingest batch of canonical tables
    lake/<step>/as_of=YYYY-MM-DD/<step>.parquet  one step's output (features, lifecycle, ...)
    lake/<area>/as_of=.../_manifest.json         run id, config hash, inputs, rows and file hashes
    lake/_runs.jsonl                             append-only log of runs, with wall-clock times

Publishing writes into ``lake/.staging/<token>/`` and then swaps the directory into place with
renames, so a reader sees the old snapshot or the new one, never half of either; a failure before the
swap leaves the lake byte-for-byte unchanged. The manifest holds no wall-clock time and the run id is
derived from content, so re-running the same inputs gives identical bytes.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lifeloop.data.schema import TABLES
from lifeloop.errors import DataError
from lifeloop.store.lake_crypto import LakeCrypto, read_lake_table

BANK = "bank"
MANIFEST = "_manifest.json"
STALE_STAGING_SECONDS = 6 * 3600


# the step that publishes an area, where the two names differ (every other area is its step's name);
# hints must name a step `lifeloop run --steps` accepts
STEP_OF_AREA = {"lists": "plan"}


def run_hint(area: str, as_of: dt.date | str = "DATE") -> str:
    """What to run to publish ``area`` as of a date: the ingest for bank data, else the step that writes it."""
    if area == BANK:
        return "ingest the bank's extracts first: `lifeloop ingest FOLDER`"
    return f"run `lifeloop run --as-of {as_of} --steps {STEP_OF_AREA.get(area, area)}` first"


def as_of_dir_name(as_of: dt.date) -> str:
    return f"as_of={as_of.isoformat()}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Lake:
    """A folder of snapshots. All writes go through :meth:`publish`."""

    def __init__(self, root: str | Path, crypto: LakeCrypto | None = None):
        self.root = Path(root)
        # encrypts the C2 columns of bank batches and decrypts them for readers (lifeloop.store.lake_crypto)
        self.crypto = crypto
        self._recover()

    # ---------------------------------------------------------------- paths and listing
    def snapshot_dir(self, area: str, as_of: dt.date) -> Path:
        return self.root / area / as_of_dir_name(as_of)

    def exists(self, area: str, as_of: dt.date) -> bool:
        return (self.snapshot_dir(area, as_of) / MANIFEST).exists()

    def dates(self, area: str) -> list[dt.date]:
        """Published as-of dates of an area, oldest first."""
        base = self.root / area
        if not base.is_dir():
            return []
        out = []
        for p in base.iterdir():
            if p.name.startswith("as_of=") and (p / MANIFEST).exists():
                out.append(dt.date.fromisoformat(p.name[len("as_of="):]))
        return sorted(out)

    def manifest(self, area: str, as_of: dt.date) -> dict[str, Any]:
        path = self.snapshot_dir(area, as_of) / MANIFEST
        if not path.exists():
            raise DataError(f"no {area} snapshot as of {as_of}", hint=run_hint(area, as_of))
        return json.loads(path.read_text(encoding="utf-8"))

    def snapshot_file(self, area: str, as_of: dt.date) -> Path:
        """The Parquet file of a published step snapshot, or a DataError saying which step to run."""
        path = self.snapshot_dir(area, as_of) / f"{area}.parquet"
        if not self.exists(area, as_of) or not path.exists():
            raise DataError(f"no {area} snapshot as of {as_of}",
                            hint=run_hint(area, as_of))
        return path

    def previous_date(self, area: str, as_of: dt.date) -> dt.date | None:
        """The latest published snapshot date of ``area`` strictly before ``as_of``."""
        earlier = [d for d in self.dates(area) if d < as_of]
        return earlier[-1] if earlier else None

    def latest_date(self, area: str, as_of: dt.date) -> dt.date | None:
        """The latest published snapshot date of ``area`` on or before ``as_of``."""
        found = [d for d in self.dates(area) if d <= as_of]
        return found[-1] if found else None

    def bank_files(self, as_of: dt.date) -> dict[str, list[Path]]:
        """The canonical tables as of a date: for each table, the Parquet files to read.

        State tables: the newest batch on or before ``as_of`` that holds the table.
        Fact tables: every batch on or before ``as_of`` that holds the table (readers must still
        filter rows to the table's date column <= as_of).
        """
        batches = [d for d in self.dates(BANK) if d <= as_of]
        out: dict[str, list[Path]] = {}
        for name, table in TABLES.items():
            files = [self.snapshot_dir(BANK, d) / f"{name}.parquet" for d in batches]
            files = [f for f in files if f.exists()]
            if not files:
                continue
            out[name] = files[-1:] if table.kind == "state" else files
        return out

    def read_table(self, path: Path, columns: list[str] | None = None):
        """A lake file as an Arrow table, its C2 columns decrypted if asked for (no key is used otherwise)."""
        return read_lake_table(self.crypto, path, columns)

    def write_table(self, path: Path, table: Any, table_name: str) -> None:
        """Write an Arrow table as a bank file of this lake: its C2 columns encrypted when the lake encrypts."""
        import pyarrow.parquet as pq

        if self.crypto is not None and self.crypto.encrypt:
            self.crypto.write(path, table.schema, table.to_batches(max_chunksize=1 << 20), table_name,
                              compression="zstd")
        else:
            pq.write_table(table, path, compression="zstd")

    # ---------------------------------------------------------------- publishing
    @contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive lock on the lake for the duration of a publish."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def publish(self, area: str, as_of: dt.date, write: Callable[[Path], dict[str, Any] | None],
                manifest: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write a snapshot atomically; return its manifest.

        ``write(staging_dir)`` writes the snapshot's files and may return extra manifest fields.
        If it raises, the staging folder is removed and the lake is unchanged.
        """
        staging = self.root / ".staging" / uuid.uuid4().hex
        with self.lock():  # another publisher may be removing an empty .staging at this moment
            staging.mkdir(parents=True)
        started = time.perf_counter()
        try:
            extra = write(staging) or {}
            files = sorted(p for p in staging.iterdir() if p.is_file())
            body: dict[str, Any] = {"area": area, "as_of": as_of.isoformat(), **(manifest or {}), **extra}
            body["files"] = {p.name: file_sha256(p) for p in files}
            # encrypted files differ byte for byte on every write (random data keys and nonces): where the
            # writer gives the plaintext content's hashes ("content"), the run id is taken over those instead
            identity = {k: v for k, v in body.items() if k != "files"} if "content" in body else body
            body["run_id"] = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
            (staging / MANIFEST).write_text(json.dumps(body, sort_keys=True, indent=2, default=str) + "\n",
                                            encoding="utf-8")
            with self.lock():
                self._swap(staging, self.snapshot_dir(area, as_of))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            with self.lock():
                _rmdir_if_empty(staging.parent)
            raise
        with self.lock():
            _rmdir_if_empty(staging.parent)
        self._log({"area": area, "as_of": as_of.isoformat(), "run_id": body["run_id"],
                   "seconds": round(time.perf_counter() - started, 3),
                   "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                   "rows": body.get("rows")})
        return body

    def remove(self, area: str, as_of: dt.date) -> bool:
        """Remove a derived snapshot (the customer index after an erasure): renamed aside under the lock, so a
        reader sees it whole or not at all, then deleted. False when there was none."""
        final = self.snapshot_dir(area, as_of)
        gone = final.with_name(f".removed-{uuid.uuid4().hex}-{final.name}")
        with self.lock():
            if not final.exists():
                return False
            os.rename(final, gone)
            _fsync_dir(final.parent)
        shutil.rmtree(gone, ignore_errors=True)
        return True

    def save_state(self, area: str, name: str, data: bytes) -> Path:
        """Write an area-level state file (``lake/<area>/<name>``, e.g. the cluster registry) atomically."""
        path = self.root / area / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        with self.lock():
            os.replace(tmp, path)
        return path

    def _swap(self, staging: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            old = final.with_name(f".replaced-{uuid.uuid4().hex}-{final.name}")
            os.rename(final, old)
            os.rename(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, final)
        _fsync_dir(final.parent)

    def _recover(self) -> None:
        """Finish or undo a swap that a crash interrupted; drop abandoned staging folders.

        Runs under the lake's lock: a live publisher holds it across both renames of a swap, so a
        ``.replaced-*`` folder seen under the lock is a crash's leftover, never a swap in progress.
        The first look is lock-free, so opening a healthy lake (the usual case) never waits.
        """
        if not self.root.is_dir() or not self._leftovers():
            return
        with self.lock():
            for area in self._areas():
                for old in _entries(area, ".replaced-"):
                    final = area / old.name.split("-", 2)[2]
                    if final.exists():
                        shutil.rmtree(old, ignore_errors=True)
                    else:
                        os.rename(old, final)
            for st in self._stale_staging():
                shutil.rmtree(st, ignore_errors=True)
            _rmdir_if_empty(self.root / ".staging")

    def _areas(self) -> list[Path]:
        return [a for a in self.root.iterdir() if not a.name.startswith(".") and a.is_dir()]

    def _leftovers(self) -> bool:
        """Anything for :meth:`_recover` to do (looked at without the lock; re-checked under it)."""
        return any(_entries(a, ".replaced-") for a in self._areas()) or bool(self._stale_staging())

    def _stale_staging(self) -> list[Path]:
        # staging folders of crashed runs; a live run's folder is young, so keep anything recent. A
        # folder may vanish while we look (a publisher renamed or removed it): that is not an error.
        cutoff = time.time() - STALE_STAGING_SECONDS
        out = []
        for st in _entries(self.root / ".staging"):
            try:
                if st.stat().st_mtime < cutoff:
                    out.append(st)
            except FileNotFoundError:
                continue
        return out

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.root / "_runs.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def _entries(folder: Path, prefix: str = "") -> list[Path]:
    """Entries of a folder whose name starts with ``prefix``; none if the folder vanished meanwhile."""
    try:
        with os.scandir(folder) as it:
            return [Path(e.path) for e in it if e.name.startswith(prefix)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
