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
columns with the C2 columns decrypted by pyarrow, row by row (``POSITIONAL JOIN``): the C2 scan runs only
when a query uses a C2 column. Spark reads an encrypted file through pyarrow as a whole (:func:`read_table`).

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


def c2_columns(table_name: str) -> list[str]:
    """The canonical table's C2 columns, in schema order (what the lake encrypts)."""
    return [c.name for c in TABLES[table_name].columns if c.pii == "C2"] if table_name in TABLES else []


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

                def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
                    return crypto._keys().manager.wrap(master_key_identifier, bytes(key_bytes))

                def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
                    found = crypto._cache.get((master_key_identifier, wrapped_key))
                    if found is None:
                        crypto.unwrapped.append(master_key_identifier)
                        found = crypto._keys().manager.unwrap(master_key_identifier, wrapped_key)
                        crypto._cache[(master_key_identifier, wrapped_key)] = found
                    return found

            self._factory = (pe.CryptoFactory(lambda config: BankKms(config)), pe.KmsConnectionConfig())
        return self._factory

    def encryption_properties(self, columns: Sequence[str]) -> Any:
        import pyarrow.parquet.encryption as pe

        factory, kms = self._crypto()
        config = pe.EncryptionConfiguration(footer_key=FOOTER_KEY, column_keys={COLUMN_KEY: list(columns)},
                                            encryption_algorithm="AES_GCM_V1", plaintext_footer=True,
                                            double_wrapping=False, data_key_length_bits=256,
                                            cache_lifetime=dt.timedelta(minutes=10))
        return factory.file_encryption_properties(kms, config)

    def decryption_properties(self) -> Any:
        import pyarrow.parquet.encryption as pe

        factory, kms = self._crypto()
        return factory.file_decryption_properties(kms, pe.DecryptionConfiguration(
            cache_lifetime=dt.timedelta(minutes=10)))

    def scan_options(self) -> Any:
        """pyarrow dataset scan options that decrypt (keys are unwrapped only for columns actually read)."""
        import pyarrow.dataset as ds
        import pyarrow.parquet.encryption as pe

        factory, kms = self._crypto()
        config = ds.ParquetDecryptionConfig(factory, kms, pe.DecryptionConfiguration(
            cache_lifetime=dt.timedelta(minutes=10)))
        return ds.ParquetFragmentScanOptions(decryption_config=config)

    # ---------------------------------------------------------------- writing
    def write(self, path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch], table_name: str,
              **options: Any) -> str:
        """Write batches to ``path`` (C2 columns encrypted when ``encrypt``); return the content's sha256.

        The content hash is taken over the plaintext Arrow data, so the same rows give the same hash
        although encrypted bytes differ on every write (random data keys and nonces).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = [c for c in c2_columns(table_name) if c in schema.names] if self.encrypt else []
        props = self.encryption_properties(columns) if columns else None
        stored = schema.with_metadata({**(schema.metadata or {}), META_KEY: json.dumps(columns).encode()}) \
            if columns else schema
        digest = hashlib.sha256()
        with pq.ParquetWriter(path, stored, encryption_properties=props, **options) as writer:
            for batch in batches:
                # hashed as plaintext Parquet (uncompressed): the same values give the same bytes whatever
                # the Arrow buffers looked like (a validity bitmap or none, slices), as the plaintext lake did
                sink = pa.BufferOutputStream()
                pq.write_table(pa.Table.from_batches([batch], schema=schema), sink, compression="none")
                digest.update(sink.getvalue())
                writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=stored))
        return digest.hexdigest()

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


def duckdb_view(con: Any, name: str, files: Sequence[Path], crypto: LakeCrypto | None,
                read_parquet: Callable[[list[Path], bool], str]) -> str:
    """SQL of a view over lake files for DuckDB, decrypting C2 columns only when a query reads them.

    Plaintext files are read by DuckDB as they are (``read_parquet(sql_of(files, file_row_number))``). For an
    encrypted file, the plaintext columns come from DuckDB's scan and the encrypted ones from a pyarrow
    dataset that decrypts them, joined by position in the file; files are then unioned by name.
    """
    import pyarrow.dataset as ds

    encrypted = {f: encrypted_columns(f) for f in files}
    if not any(encrypted.values()):
        return f"SELECT * FROM {read_parquet(list(files), False)}"
    if crypto is None:
        raise DataError(f"{files[0]}: C2 columns are encrypted and this lake was opened without keys",
                        hint="open the workspace through lifeloop.context.Context (it reads lifeloop.yaml's "
                             "keys: section)")
    parts = []
    for i, f in enumerate(files):
        secret = encrypted[f]
        if not secret:
            parts.append(f"SELECT * FROM {read_parquet([f], False)}")
            continue
        rel = f"{name}__c2_{i}"
        dataset = ds.dataset([str(f)], format=ds.ParquetFileFormat(default_fragment_scan_options=crypto.scan_options()))
        con.register(rel, dataset)
        plain = ", ".join(_quote(c) for c in secret)
        c2 = ", ".join(f"c.{_quote(c)}" for c in secret)
        # the two sides are one file read twice; a positional join pairs row k with row k
        parts.append(f"SELECT p.* EXCLUDE ({plain}), {c2} FROM {read_parquet([f], False)} AS p "
                     f"POSITIONAL JOIN (SELECT {plain} FROM {_quote(rel)}) AS c")
    return " UNION ALL BY NAME ".join(f"({p})" for p in parts)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
