"""C2 columns of the lake encrypted at rest: Parquet modular encryption through pyarrow, keys from the bank.

A bank table is written with a **plaintext footer** and its C2 columns (:func:`c2_columns`: names, ID and
mobile numbers, account numbers, balances, amounts) encrypted with AES-GCM under a random data key per
file, wrapped by the master key ``lake.c2`` of the bank's :class:`~lifeloop.store.keys.KeyManager`
(pyarrow's ``CryptoFactory`` with a ``KmsClient`` that calls it). The footer is signed with a second
data key (``lake.footer``) so a changed footer is detected by a reader that holds the keys.

Why a plaintext footer: every other column stays readable without any key, by pyarrow and by DuckDB's
own ``read_parquet`` — so a step that needs no C2 column never unwraps a key and never decrypts a C2 value.
DuckDB cannot decrypt pyarrow's files itself (its Parquet encryption is uniform, footer-key only, and
does not read pyarrow's key material), so :func:`duckdb_view` joins DuckDB's native scan of the plaintext
columns with the C2 columns decrypted by pyarrow, row by row (``POSITIONAL JOIN``, one per range of row
groups): the C2 scan runs only when a query uses a C2 column, and only for the C2 columns it uses.
Spark reads an encrypted file through pyarrow as a whole (:func:`read_table`).

The files' schema metadata names the encrypted columns (``lifeloop.encrypted``), which is how a reader
knows a file needs keys; a file without it is plaintext (a lake written before encryption was switched
on still reads).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.data.schema import TABLES
from lifeloop.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.store.keys import Keys

META_KEY = b"lifeloop.encrypted"
COLUMN_KEY = "lake.c2"
FOOTER_KEY = "lake.footer"
# not a key: wrapping it makes pyarrow create (and cache) its KMS client in the caller's thread, loads no key
PROBE_KEY = "lake.probe"
KMS_INSTANCE = "lifeloop"
# how long pyarrow keeps its KMS client (and key caches): longer than any query (see LakeCrypto.prime)
CACHE_LIFETIME = dt.timedelta(days=1)


def c2_columns(table_name: str) -> list[str]:
    """The canonical table's C2 columns, in schema order (what the lake encrypts)."""
    return [c.name for c in TABLES[table_name].columns if c.pii == "C2"] if table_name in TABLES else []


# an encrypted file's dictionaries may grow to this before pyarrow falls back to plain pages (its default is 1 MiB:
# 100,000 customer ids in a row group of transactions already exceed it)
DICTIONARY_PAGE_LIMIT = 1 << 26


def encrypted_layout(table_name: str, schema: pa.Schema, encrypted: Sequence[str]) -> dict[str, Any]:
    """pyarrow writer options for a file with ``encrypted`` columns: the layout its readers pay least for.

    DuckDB reads such a file's plaintext columns itself and pyarrow decrypts the others, paired by position
    (:func:`duckdb_view`); what each side costs depends on how the file was written (docs/performance.md,
    "Encrypted lake"):

    - decimals are stored as integers (``INT64`` up to 18 digits, as DuckDB writes them), not as big-endian
      fixed-length bytes, which pyarrow decodes about twice as slowly;
    - the plaintext columns other than a one-column primary key keep their dictionary for a whole row group
      (a large dictionary page limit): DuckDB reads a dictionary-encoded page as a dictionary vector, which its
      aggregates hash once per distinct value (``customer_id`` of the transactions) instead of once per row;
      pyarrow's 1 MiB default makes ``customer_id`` fall back to plain pages after 70,000 or so distinct ids;
    - a unique key and the encrypted columns get no dictionary: every value is distinct, or nearly (names,
      mobiles, amounts), so a dictionary only adds a lookup for the reader and an index for the writer.

    The encryption is the same in every layout (the same columns, keys and algorithm); so are the values read.
    """
    key = TABLES[table_name].primary_key if table_name in TABLES else ()
    unique = set(key) if len(key) == 1 else set()
    return {"store_decimal_as_integer": True,
            "use_dictionary": [n for n in schema.names if n not in unique and n not in encrypted],
            "dictionary_pagesize_limit": DICTIONARY_PAGE_LIMIT}


def encrypted_columns(path: Path) -> list[str]:
    """The columns a lake file keeps encrypted (none for a plaintext file); needs no key."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[META_KEY]) if META_KEY in meta else []


class LakeCrypto:
    """Encrypts and decrypts the lake's C2 columns with the workspace's keys (loaded only when needed).

    ``encrypt``: whether new bank batches are written encrypted (``lake.encryption`` in lifeloop.yaml);
    reading an encrypted file works whatever it says.
    """

    def __init__(self, keys: Callable[[], Keys], *, encrypt: bool = True):
        self._keys = keys
        self.encrypt = encrypt
        self._factory: Any = None
        self.unwrapped: list[str] = []   # master key ids asked of the key manager (tests, and to prove laziness)
        self.kms_clients = 0             # KMS clients pyarrow made (tests: one, made by prime)
        self._cache: dict[tuple[str, str], bytes] = {}

    # ---------------------------------------------------------------- pyarrow's crypto factory and KMS client
    def _crypto(self) -> tuple[Any, Any]:
        import pyarrow.parquet.encryption as pe

        if self._factory is None:
            crypto = self

            class BankKms(pe.KmsClient):
                """pyarrow's KMS client, backed by the bank's key manager (unwraps cached per wrapped key)."""

                def __init__(self, _config: Any):
                    pe.KmsClient.__init__(self)
                    crypto.kms_clients += 1

                def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
                    if master_key_identifier == PROBE_KEY:
                        return ""
                    return crypto._keys().manager.wrap(master_key_identifier, bytes(key_bytes))

                def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
                    found = crypto._cache.get((master_key_identifier, wrapped_key))
                    if found is None:
                        crypto.unwrapped.append(master_key_identifier)
                        found = crypto._keys().manager.unwrap(master_key_identifier, wrapped_key)
                        crypto._cache[(master_key_identifier, wrapped_key)] = found
                    return found

            # a fixed KMS instance: pyarrow caches its client by instance id, which a reader would otherwise take
            # from each file's key material and a writer from this config (two clients, one made mid-scan)
            self._factory = (pe.CryptoFactory(lambda config: BankKms(config)),
                             pe.KmsConnectionConfig(kms_instance_id=KMS_INSTANCE, kms_instance_url=KMS_INSTANCE))
            self.prime()
        return self._factory

    def prime(self) -> None:
        """Have pyarrow create its KMS client now, in this thread, so no scan ever has to.

        pyarrow creates the client (our Python ``BankKms``) under a lock of its own; a scan that did so on
        one of pyarrow's threads would wait for the GIL while holding that lock, and a DuckDB thread that
        holds the GIL while opening another encrypted file (``Scanner.to_reader``) would wait for the lock:
        a deadlock, seen when DuckDB ran two pairings at once. Once the client is cached, a scan's key
        unwraps call Python under no lock. Wrapping the probe key uses no key of the bank's, and the
        cache outlives any query; called again before each view (a cleared cache is filled again here).
        """
        import pyarrow.parquet.encryption as pe

        factory, kms = self._crypto()
        factory.file_encryption_properties(kms, pe.EncryptionConfiguration(
            footer_key=PROBE_KEY, uniform_encryption=True, plaintext_footer=True, double_wrapping=False,
            cache_lifetime=CACHE_LIFETIME))

    def encryption_properties(self, columns: Sequence[str]) -> Any:
        import pyarrow.parquet.encryption as pe

        factory, kms = self._crypto()
        config = pe.EncryptionConfiguration(footer_key=FOOTER_KEY, column_keys={COLUMN_KEY: list(columns)},
                                            encryption_algorithm="AES_GCM_V1", plaintext_footer=True,
                                            double_wrapping=False, data_key_length_bits=256,
                                            cache_lifetime=CACHE_LIFETIME)
        return factory.file_encryption_properties(kms, config)

    def decryption_properties(self) -> Any:
        import pyarrow.parquet.encryption as pe

        factory, kms = self._crypto()
        return factory.file_decryption_properties(kms, pe.DecryptionConfiguration(cache_lifetime=CACHE_LIFETIME))

    def scan_options(self) -> Any:
        """pyarrow dataset scan options that decrypt (keys are unwrapped only for columns actually read)."""
        import pyarrow.dataset as ds
        import pyarrow.parquet.encryption as pe

        factory, kms = self._crypto()
        self.prime()   # DuckDB scans with these on its own threads, several at once
        config = ds.ParquetDecryptionConfig(factory, kms, pe.DecryptionConfiguration(cache_lifetime=CACHE_LIFETIME))
        return ds.ParquetFragmentScanOptions(decryption_config=config)

    # ---------------------------------------------------------------- writing
    def write(self, path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch], table_name: str,
              content_hash: bool = True, **options: Any) -> str:
        """Write batches to ``path`` (C2 columns encrypted when ``encrypt``); return the content's sha256.

        The content hash is taken over the plaintext Arrow data, so the same rows give the same hash
        although encrypted bytes differ on every write (random data keys and nonces). Without
        ``content_hash`` (a derived copy such as the customer index, rebuilt rather than compared) the rows
        are not hashed and the empty string is returned.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = [c for c in c2_columns(table_name) if c in schema.names] if self.encrypt else []
        props = self.encryption_properties(columns) if columns else None
        stored = schema.with_metadata({**(schema.metadata or {}), META_KEY: json.dumps(columns).encode()}) \
            if columns else schema
        # an encrypted file is laid out for the pairing that reads it (encrypted_layout); a plaintext one as before
        options = {**encrypted_layout(table_name, schema, columns), **options} if columns else options
        row_group_size = options.pop("row_group_size", None)   # a write's option in pyarrow, not the writer's
        digest = hashlib.sha256()
        with pq.ParquetWriter(path, stored, encryption_properties=props, **options) as writer:
            for batch in batches:
                if not content_hash:
                    writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=stored),
                                       row_group_size=row_group_size)
                    continue
                # hashed as plaintext Parquet (uncompressed): the same values give the same bytes whatever
                # the Arrow buffers looked like (a validity bitmap or none, slices), as the plaintext lake did
                sink = pa.BufferOutputStream()
                pq.write_table(pa.Table.from_batches([batch], schema=schema), sink, compression="none")
                digest.update(sink.getvalue())
                writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=stored),
                                   row_group_size=row_group_size)
        return digest.hexdigest() if content_hash else ""

    # ---------------------------------------------------------------- reading
    def read_table(self, path: Path, columns: Sequence[str] | None = None) -> pa.Table:
        """A lake file as Arrow; keys are used only if a requested column is encrypted."""
        import pyarrow.parquet as pq

        secret = encrypted_columns(path)
        wanted = list(columns) if columns is not None else None
        needs_key = bool(secret) and (wanted is None or any(c in secret for c in wanted))
        return _plain_schema(pq.read_table(path, columns=wanted, decryption_properties=self.decryption_properties()
                                           if needs_key else None))


def read_lake_table(crypto: LakeCrypto | None, path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a lake file, decrypting where needed; a clear error if it is encrypted and there are no keys."""
    import pyarrow.parquet as pq

    if crypto is not None:
        return crypto.read_table(path, columns)
    secret = encrypted_columns(path)
    if secret and (columns is None or any(c in secret for c in columns)):
        raise DataError(f"{path}: the columns {', '.join(secret)} are encrypted and this lake was opened "
                        "without keys", hint="open the workspace through lifeloop.context.Context (it reads "
                                             "lifeloop.yaml's keys: section)")
    return _plain_schema(pq.read_table(path, columns=list(columns) if columns is not None else None))


def _plain_schema(table: pa.Table) -> pa.Table:
    """The table without the marker of encrypted columns: what was read is plaintext now (written back as it
    is, it must not claim to be encrypted)."""
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != META_KEY}
    return table.replace_schema_metadata(meta or None)


# the fewest rows worth a pairing of their own (a file with fewer than twice as many is paired whole): each
# pairing costs a plan branch, a scan set-up on both sides and a partial aggregate of its own (module attribute
# so tests can make it small)
PAIR_ROWS = 1 << 19


def row_ranges(path: Path, parts: int, rows: int | None = None) -> list[tuple[list[int], int, int]]:
    """A file's row groups in at most ``parts`` consecutive runs of about equal rows, each of at least ``rows``
    (:data:`PAIR_ROWS`) where the file has that many: (row groups, first row, end row).

    ``parts`` is the number of threads the engine runs: a positional join is a single-threaded source, so a
    file paired whole would make the query above it single-threaded; more pairings than threads buy nothing
    and cost CPU. Reads only the footer, which is plaintext: no key is used."""
    import pyarrow.parquet as pq

    rows = PAIR_ROWS if rows is None else rows
    meta = pq.read_metadata(path)
    sizes = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
    total = sum(sizes)
    n = max(1, min(parts, len(sizes), total // max(rows, 1)))
    ranges: list[tuple[list[int], int, int]] = []
    groups: list[int] = []
    start = end = 0
    for k, size in enumerate(sizes):
        # close the current run where it comes closer to its share of the rows than it would with this group
        share = total * (len(ranges) + 1) / n
        if groups and len(ranges) < n - 1 and abs(end - share) <= abs(end + size - share) \
                and len(sizes) - k >= n - 1 - len(ranges):
            ranges.append((groups, start, end))
            groups, start = [], end
        groups.append(k)
        end += size
    if groups or not ranges:
        ranges.append((groups, start, end))
    return ranges


def engine_threads(con: Any) -> int:
    """The threads a DuckDB connection runs queries on."""
    return int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])


def duckdb_view(con: Any, name: str, files: Sequence[Path], crypto: LakeCrypto | None,
                read_parquet: Callable[[list[Path], bool], str]) -> str:
    """SQL of a view over lake files for DuckDB, decrypting C2 columns only when a query reads them.

    Plaintext files are read by DuckDB as they are (``read_parquet(sql_of(files, file_row_number))``). For an
    encrypted file, the plaintext columns come from DuckDB's scan and the encrypted ones from a pyarrow
    dataset that decrypts them, joined by position (``POSITIONAL JOIN``), one pairing per range of row groups
    (:func:`row_ranges`: DuckDB's side reads the range by ``file_row_number``, which skips the other row groups;
    pyarrow's side is a fragment of the same row groups); the pairings and files are unioned by name.

    A positional join cannot run on more than one thread, so one pairing for a whole large file would make the
    query above it single-threaded; as many ranges as the connection has threads let DuckDB run them side by
    side when the query does not ask for insertion order (the engine's connection does not:
    ``preserve_insertion_order = false``), and no more, since every pairing costs CPU of its own. Nothing is
    decrypted or unwrapped here: the keys are used when a query scans a C2 column (projection pushdown into
    the pyarrow dataset), for the row groups it reads, every time it reads them (nothing decrypted is kept).
    """
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    encrypted = {f: encrypted_columns(f) for f in files}
    if not any(encrypted.values()):
        return f"SELECT * FROM {read_parquet(list(files), False)}"
    if crypto is None:
        raise DataError(f"{files[0]}: C2 columns are encrypted and this lake was opened without keys",
                        hint="open the workspace through lifeloop.context.Context (it reads lifeloop.yaml's "
                             "keys: section)")
    parts = []
    plaintext = [f for f in files if not encrypted[f]]
    if plaintext:
        parts.append(f"SELECT * FROM {read_parquet(plaintext, False)}")
    fmt = ds.ParquetFileFormat(default_fragment_scan_options=crypto.scan_options())
    local = pafs.LocalFileSystem()
    threads = engine_threads(con)
    for i, f in enumerate(files):
        secret = encrypted[f]
        if not secret:
            continue
        schema = pq.read_schema(f)   # the plaintext footer: no key
        plain = ", ".join(_quote(c) for c in secret)
        c2 = ", ".join(f"c.{_quote(c)}" for c in secret)
        ranges = row_ranges(f, threads)
        for j, (groups, start, end) in enumerate(ranges):
            rel = f"{name}__c2_{i}_{j}"
            # a fragment made from the path and row groups reads no footer until it is scanned
            con.register(rel, ds.FileSystemDataset([fmt.make_fragment(str(f), local, row_groups=groups)], schema, fmt))
            if len(ranges) == 1:
                scan = read_parquet([f], False)
            else:
                scan = (f"(SELECT * EXCLUDE (file_row_number) FROM {read_parquet([f], True)} "
                        f"WHERE file_row_number >= {start} AND file_row_number < {end})")
            # the two sides are the same rows of one file read twice; a positional join pairs row k with row k
            parts.append(f"SELECT p.* EXCLUDE ({plain}), {c2} FROM {scan} AS p "
                         f"POSITIONAL JOIN (SELECT {plain} FROM {_quote(rel)}) AS c")
    return " UNION ALL BY NAME ".join(f"({p})" for p in parts)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
