"""Rotating keys and re-encrypting what they protect: the lake's bank batches and the operations database's rows.

``lifeloop keys rotate``: a new master-key version; every data key of the key ring re-wrapped under it (the
operations database's rows stay as they are: their data key did not change); every encrypted bank batch
rewritten, so its per-file data keys are wrapped by the new version. Older master versions stay in the key
file for reading (backups, a rotation interrupted half-way). Audited.

``lifeloop keys reencrypt``: the operations database's values moved to the newest ``ops.c2`` data key
(``--new-data-key`` makes a new one first), plaintext rows from before encryption encrypted, and, where the
lake encrypts, plaintext bank batches encrypted. Audited.

A rewritten batch keeps its content hashes, hence its run id: the steps that read it need not run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.store.keys import OPS_KEY
from lifeloop.store.lake import BANK, Lake
from lifeloop.store.lake_crypto import encrypted_columns
from lifeloop.store.ops import audit
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.encrypted import FieldCipher, reencrypt

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from lifeloop.store.keys import Keys

ROW_GROUP = 1_000_000   # rows per batch of a bank file (lifeloop.data.ingest.ROW_GROUP)
KEEP_OUT = ("area", "as_of", "files", "run_id", "content", "encrypted")


@dataclass
class Rekeyed:
    """What a rotation or re-encryption did."""

    master_version: str
    rewrapped: list[str] = field(default_factory=list)      # data keys re-wrapped under the new master version
    lake_files: int = 0                                      # bank files rewritten
    ops_rows: dict[str, int] = field(default_factory=dict)   # values re-encrypted per table.column


def rewrite_bank(lake: Lake, *, plaintext_too: bool) -> int:
    """Rewrite every encrypted bank batch under the current keys (and plaintext ones if ``plaintext_too``)."""
    if lake.crypto is None:
        return 0
    done = 0
    for day in lake.dates(BANK):
        folder = lake.snapshot_dir(BANK, day)
        files = sorted(folder.glob("*.parquet"))
        if not any(encrypted_columns(f) for f in files) and not (plaintext_too and lake.crypto.encrypt):
            continue
        old = lake.manifest(BANK, day)

        def write(staging: Path, files: list[Path] = files) -> dict[str, Any]:
            content = {}
            for f in files:
                table = lake.read_table(f)
                schema = table.schema.remove_metadata()
                table = table.cast(schema)
                # batches as ingest wrote them (ROW_GROUP rows each): the same content hash, hence the same run id
                batches = (table.slice(i, ROW_GROUP).combine_chunks().to_batches()[0]
                           for i in range(0, table.num_rows, ROW_GROUP))
                content[f.name] = lake.crypto.write(staging / f.name, schema, batches, f.stem, compression="zstd")
            return {"content": content, "encrypted": lake.crypto.encrypt}

        lake.publish(BANK, day, write, {k: v for k, v in old.items() if k not in KEEP_OUT})
        done += len(files)
    return done


def rotate(keys: Keys, lake: Lake, ops: sessionmaker[Session], *, actor: str, reason: str | None = None) -> Rekeyed:
    """A new master-key version, every data key re-wrapped, encrypted bank batches rewritten; audited."""
    before = keys.manager.current_version()
    rotation = keys.rotate()
    files = rewrite_bank(lake, plaintext_too=False)
    done = Rekeyed(rotation.version, rotation.rewrapped, files)
    with unit_of_work(ops) as session:
        audit.record(session, actor=actor, action="keys.rotate", target_type="keys", target_id=rotation.version,
                     reason=reason, details={"from_version": before, "to_version": rotation.version,
                                             "rewrapped": rotation.rewrapped, "lake_files": files})
    return done


def reencrypt_all(keys: Keys, lake: Lake, ops: sessionmaker[Session], *, actor: str, new_data_key: bool = False,
                  reason: str | None = None) -> Rekeyed:
    """Operations rows under the newest ``ops.c2`` data key (a new one first if asked), plaintext encrypted; audited."""
    version = keys.new_data_key(OPS_KEY)[0] if new_data_key else keys.data_key(OPS_KEY)[0]
    files = rewrite_bank(lake, plaintext_too=True)
    with unit_of_work(ops) as session:
        rows = reencrypt(session.connection(), FieldCipher(lambda: keys), newest=version)
        audit.record(session, actor=actor, action="keys.reencrypt", target_type="keys", target_id=f"ops.c2#{version}",
                     reason=reason, details={"ops_rows": rows, "lake_files": files, "new_data_key": new_data_key})
    return Rekeyed(keys.manager.current_version(), [], files, rows)
