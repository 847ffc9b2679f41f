"""C2 fields of the operations database encrypted at rest: AES-256-GCM through SQLAlchemy column types.

A stored value is ``lle1:<data-key version>:<base64 of a random 96-bit nonce + ciphertext + tag>``; the
associated data is ``<table>.<column>``, so a value copied into another column (or another table) does not
decrypt. The data key is the key ring's ``ops.c2`` (:mod:`lifeloop.store.keys`), wrapped by the bank's master
key; a master-key rotation re-wraps it without touching a row, and :func:`reencrypt` moves every row to the
newest data-key version when a new one is made.

Where a lookup by value is needed (replies by mobile, leads by phone) a keyed-hash blind index is stored beside
the value (:func:`blind_index`); equal values give equal hashes, and without the keys a hash says nothing.

The cipher travels with the engine (:func:`attach`): :func:`lifeloop.store.ops.open_ops` attaches the
workspace's keys. An engine without one refuses to write a C2 field, and reading an encrypted value without
it is an error naming the fix; a plaintext value from before encryption (no ``lle1:`` prefix) still reads.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from lifeloop.errors import DataError, OpsDatabaseError
from lifeloop.store.keys import OPS_KEY

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from lifeloop.store.keys import Keys

PREFIX = "lle1"
ATTR = "_lifeloop_field_cipher"


class FieldCipher:
    """Encrypts and decrypts field values with the key ring's ``ops.c2`` data key (loaded on first use)."""

    def __init__(self, keys: Callable[[], Keys]):
        self._keys = keys

    @property
    def keys(self) -> Keys:
        return self._keys()

    def encrypt(self, where: str, text: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        version, key = self.keys.data_key(OPS_KEY)
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key).encrypt(nonce, text.encode("utf-8"), where.encode())
        return f"{PREFIX}:{version}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, where: str, stored: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        _, version, body = stored.split(":", 2)
        _, key = self.keys.data_key(OPS_KEY, version)
        raw = base64.b64decode(body)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], where.encode()).decode("utf-8")
        except InvalidTag:
            raise DataError(f"an encrypted value of {where} does not decrypt: it was altered, or moved from "
                            "another column or database", hint="restore the row from a backup; compare the audit "
                                                               "log for who changed it") from None


def attach(engine: Engine, cipher: FieldCipher | None) -> Engine:
    """Give an engine the cipher its C2 columns encrypt and decrypt with."""
    setattr(engine.dialect, ATTR, cipher)
    return engine


def cipher_of(dialect: Any, where: str) -> FieldCipher:
    cipher = getattr(dialect, ATTR, None)
    if cipher is None:
        raise OpsDatabaseError(f"{where} holds personal data (C2), and this database connection has no keys to "
                               "encrypt or decrypt it",
                               hint="open the database through lifeloop.context.Context.ops() or "
                                    "lifeloop.store.ops.open_ops(url, keys=...)")
    return cipher


def is_encrypted(stored: Any) -> bool:
    return isinstance(stored, str) and stored.startswith(PREFIX + ":")


class EncryptedText(TypeDecorator):
    """A text column stored encrypted (AES-GCM, associated data ``table.column``)."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, where: str, sqlite_type: Any = None):
        super().__init__()
        self.where = where
        # the column's declared type on SQLite, where the old declaration stays (it holds any text anyway)
        self.sqlite_type = sqlite_type

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite" and self.sqlite_type is not None:
            return self.sqlite_type     # as it is: the dialect's own JSON type would quote the stored text
        return self.impl_instance

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return cipher_of(dialect, self.where).encrypt(self.where, self.serialise(value))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if not is_encrypted(value):
            return self.deserialise(value, legacy=True)   # written before encryption was switched on
        return self.deserialise(cipher_of(dialect, self.where).decrypt(self.where, value))

    def serialise(self, value: Any) -> str:
        return str(value)

    def deserialise(self, text: Any, legacy: bool = False) -> Any:
        return text


class StoredJSON(sa.JSON):
    """A column declared JSON that passes text through untouched (SQLite's declaration of an encrypted document)."""

    def adapt(self, cls, **kw):
        return StoredJSON()   # never swapped for the dialect's JSON type, which would quote the stored text

    def bind_processor(self, dialect):
        return None

    def result_processor(self, dialect, coltype):
        return None


class EncryptedJSON(EncryptedText):
    """A JSON document stored encrypted (the same envelope as :class:`EncryptedText`)."""

    cache_ok = True

    def __init__(self, where: str):
        super().__init__(where, StoredJSON())

    def serialise(self, value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)

    def deserialise(self, text: Any, legacy: bool = False) -> Any:
        # a plaintext row from before encryption: PostgreSQL's json column came back parsed, SQLite's as text
        return text if legacy and not isinstance(text, str) else json.loads(text)


def blind_index(dialect: Any, where: str, value: str | None, normalise: Callable[[str], str] = str) -> str | None:
    """The keyed hash stored beside an encrypted value for lookups (None for None)."""
    if value is None:
        return None
    return cipher_of(dialect, where).keys.keyed_hash(f"blind-index/{where}", normalise(value))


def lookup_hash(keys: Keys, where: str, value: str, normalise: Callable[[str], str] = str) -> str:
    """The blind index of ``value`` to search ``where``'s hash column with (same as on writing)."""
    return keys.keyed_hash(f"blind-index/{where}", normalise(value))


# every encrypted column: (table, column, JSON?) — what reencrypt() and the no-plaintext tests walk
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dispatches", "payload"), ("leads", "name"), ("leads", "phone"), ("leads", "note"), ("feedback", "note"),
    ("inbound_replies", "mobile"), ("inbound_replies", "text"), ("tasks", "script"), ("tasks", "note"),
)


def normalise_phone(text: str) -> str:
    """Digits only, without a leading +86 / 0086 / 86 (the same mobile however it was written)."""
    digits = "".join(ch for ch in text if ch.isdigit())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix):]
    return digits


# the blind index kept beside an encrypted column, and how its values are normalised first
BLIND_INDEXES: dict[tuple[str, str], tuple[str, Callable[[str], str]]] = {
    ("inbound_replies", "mobile"): ("mobile_hash", normalise_phone),
    ("leads", "phone"): ("phone_hash", normalise_phone),
}


def reencrypt(connection: sa.Connection, cipher: FieldCipher, *, newest: str | None = None) -> dict[str, int]:
    """Rewrite every encrypted (or legacy plaintext) value under the newest ``ops.c2`` data-key version.

    Returns rows rewritten per ``table.column``. Runs inside the caller's transaction.
    """
    version = newest or cipher.keys.data_key(OPS_KEY)[0]
    out: dict[str, int] = {}
    meta = sa.MetaData()
    for table_name, column in ENCRYPTED_COLUMNS:
        table = sa.Table(table_name, meta, autoload_with=connection)
        pk = table.c.id
        value = table.c[column]
        n = 0
        for row_id, stored in connection.execute(sa.select(pk, sa.cast(value, sa.Text)).where(value.is_not(None))):
            if is_encrypted(stored) and stored.split(":", 2)[1] == version:
                continue
            where = f"{table_name}.{column}"
            text = cipher.decrypt(where, stored) if is_encrypted(stored) else stored
            values = {column: cipher.encrypt(where, text)}
            if (table_name, column) in BLIND_INDEXES:   # a plaintext row from before the index existed
                index, normalise = BLIND_INDEXES[(table_name, column)]
                values[index] = cipher.keys.keyed_hash(f"blind-index/{where}", normalise(text))
            connection.execute(sa.update(table).where(pk == row_id).values(values))
            n += 1
        out[f"{table_name}.{column}"] = n
    return out
