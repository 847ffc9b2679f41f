"""Keys the bank holds: master keys (a KMS/HSM, or the embedded key file) and the data keys they wrap.

Envelope encryption, as a bank's KMS expects it:

* **Master keys** never leave the :class:`KeyManager`. It wraps and unwraps data keys by key id
  (``lake.c2``, ``ops.c2``, ``hash``); the wrapped text names the master-key version that wrapped it, so
  after a rotation old data stays readable until it is re-wrapped. A bank points ``keys.provider`` in
  lifeloop.yaml at its own KMS client (``python:module:Class``); the embedded default, :class:`FileKeyManager`,
  keeps versioned AES-256 master keys in a file only its owner may read (0600).
* **Data keys** encrypt the data: a random key per Parquet file (Parquet modular encryption, see
  :mod:`lifeloop.store.lake_crypto`), and the keys of the workspace's :class:`KeyRing` (``keys/keyring.json``,
  wrapped keys only, so it holds nothing secret by itself): the operations database's field key
  (:mod:`lifeloop.store.ops.encrypted`) and the keyed-hash key behind :meth:`Keys.keyed_hash`.

``lifeloop keys rotate`` adds a master-key version and re-wraps every data key under it
(:meth:`Keys.rotate`); the lake's files are re-encrypted by the caller (``Context.rotate_keys``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import importlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lifeloop.errors import ConfigError, DataError

KEY_FILE_FORMAT = "lifeloop-keys/1"
KEYRING_FORMAT = "lifeloop-keyring/1"
DEFAULT_KEY_FILE = "keys/lifeloop.keys"
DEFAULT_KEYRING = "keys/keyring.json"
WRAP_PREFIX = "lk1"          # wrapped text: lk1:<master version>:<base64 nonce+ciphertext>
HASH_KEY = "hash"            # the key id of the keyed-hash key
OPS_KEY = "ops.c2"           # the key id of the operations database's field key
KEY_BYTES = 32               # AES-256


@runtime_checkable
class KeyManager(Protocol):
    """What Lifeloop asks of a bank's KMS or HSM: wrap and unwrap data keys under master keys it keeps.

    ``wrap`` returns text that names the master-key version used; ``unwrap`` must accept text wrapped by
    any version not yet destroyed. ``rotate`` makes a new version current and returns its name.
    """

    def wrap(self, key_id: str, data_key: bytes) -> str: ...

    def unwrap(self, key_id: str, wrapped: str) -> bytes: ...

    def rotate(self) -> str: ...

    def current_version(self) -> str: ...


def version_of(wrapped: str) -> str:
    """The master-key version named in a wrapped key (``lk1:3:...`` -> ``3``); the whole text otherwise."""
    parts = wrapped.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == WRAP_PREFIX else wrapped


# --------------------------------------------------------------------------------------------- key file
def check_private(path: Path, what: str = "key file") -> None:
    """Refuse a secret file that its group or others may read or write (with the chmod that fixes it)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path}: the {what} is readable or writable by others (mode {mode:04o}); "
                          "refusing to use it",
                          hint=f"restrict it to its owner: chmod 600 {path} (and check who may have copied it)")


def _write_private(path: Path, text: str) -> None:
    """Write a file created 0600 from the start (never briefly world-readable), replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _aes(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


class FileKeyManager:
    """The embedded key manager: versioned AES-256 master keys in a 0600 JSON file.

    Wrapping is AES-GCM under the current version with the key id as associated data, so a data key
    wrapped for ``ops.c2`` cannot be unwrapped as ``lake.c2``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigError(f"{self.path}: key file not found",
                              hint="create one with `lifeloop keys init` (a new workspace gets one from "
                                   "`lifeloop init`), or point keys.path in lifeloop.yaml at the bank's key file")
        check_private(self.path)
        try:
            body = json.loads(self.path.read_text(encoding="utf-8"))
            if body.get("format") != KEY_FILE_FORMAT:
                raise ValueError(f"format {body.get('format')!r}, expected {KEY_FILE_FORMAT!r}")
            self._keys = {str(m["version"]): base64.b64decode(m["key"]) for m in body["masters"]}
            self._body = body
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path}: not a Lifeloop key file ({exc})",
                              hint="restore it from the bank's key backup; a lost key file means the "
                                   "encrypted data it protects cannot be read") from None
        if any(len(k) != KEY_BYTES for k in self._keys.values()) or str(body.get("current")) not in self._keys:
            raise ConfigError(f"{self.path}: damaged key file (a key is not 256 bits or the current version "
                              "is missing)", hint="restore it from the bank's key backup")

    @classmethod
    def create(cls, path: str | Path) -> FileKeyManager:
        """Write a new key file with one master key (refuses to overwrite one: that would lose data)."""
        path = Path(path)
        if path.exists():
            raise ConfigError(f"{path}: a key file already exists; refusing to overwrite it",
                              hint="keep it (data encrypted under it needs it); use `lifeloop keys rotate` "
                                   "for a new master-key version")
        body = {"format": KEY_FILE_FORMAT, "current": 1,
                "masters": [_new_master(1)]}
        _write_private(path, json.dumps(body, indent=2) + "\n")
        return cls(path)

    def current_version(self) -> str:
        return str(self._body["current"])

    def versions(self) -> list[str]:
        """Every master-key version the file still holds, oldest first."""
        return sorted(self._keys, key=int)

    def wrap(self, key_id: str, data_key: bytes) -> str:
        version = self.current_version()
        nonce = secrets.token_bytes(12)
        sealed = _aes(self._keys[version]).encrypt(nonce, data_key, key_id.encode())
        return f"{WRAP_PREFIX}:{version}:{base64.b64encode(nonce + sealed).decode()}"

    def unwrap(self, key_id: str, wrapped: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        prefix, version, body = (wrapped.split(":", 2) + ["", ""])[:3]
        if prefix != WRAP_PREFIX or version not in self._keys:
            raise DataError(f"a data key for {key_id!r} is wrapped by master-key version {version!r}, which "
                            f"{self.path} does not hold",
                            hint="restore the key file that holds it from the bank's key backup")
        raw = base64.b64decode(body)
        try:
            return _aes(self._keys[version]).decrypt(raw[:12], raw[12:], key_id.encode())
        except InvalidTag:
            raise DataError(f"a data key for {key_id!r} does not unwrap under master-key version {version} of "
                            f"{self.path}: it was altered, or wrapped by another key file",
                            hint="use the key file this workspace's data was encrypted with") from None

    def rotate(self) -> str:
        """Add a new master-key version and make it current; older versions stay for reading."""
        version = max(int(v) for v in self._keys) + 1
        body = dict(self._body)
        body["masters"] = [*body["masters"], _new_master(version)]
        body["current"] = version
        _write_private(self.path, json.dumps(body, indent=2) + "\n")
        self.__init__(self.path)
        return str(version)


def _new_master(version: int) -> dict[str, Any]:
    return {"version": version, "key": base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode(),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def load_key_manager(provider: str, path: Path, options: dict[str, Any] | None = None) -> KeyManager:
    """The key manager lifeloop.yaml names: ``file`` (the embedded key file) or ``python:module:Class``.

    A bank's class is called with ``**options`` (``keys.options``) and must offer :class:`KeyManager`'s methods.
    """
    if provider == "file":
        return FileKeyManager(path)
    if not provider.startswith("python:") or provider.count(":") != 2:
        raise ConfigError(f"keys.provider {provider!r} is not a key manager",
                          hint="use `file` (the embedded key file) or `python:package.module:ClassName` "
                               "for the bank's KMS client")
    _, module, name = provider.split(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"keys.provider {provider!r}: cannot load it ({exc})",
                          hint="install the bank's KMS client package, or correct the module and class name") \
            from None
    manager = cls(**(options or {}))
    missing = [m for m in ("wrap", "unwrap", "rotate", "current_version") if not callable(getattr(manager, m, None))]
    if missing:
        raise ConfigError(f"keys.provider {provider!r} lacks {', '.join(missing)}",
                          hint="a key manager wraps, unwraps and rotates (lifeloop.store.keys.KeyManager)")
    return manager


# --------------------------------------------------------------------------------------------- key ring
class KeyRing:
    """The workspace's wrapped data keys (``keys/keyring.json``): key id -> versions of wrapped keys.

    Holds nothing usable without the key manager; it is still written 0600 and belongs in the backup.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.keys: dict[str, dict[str, str]] = {}
        if self.path.exists():
            try:
                body = json.loads(self.path.read_text(encoding="utf-8"))
                if body.get("format") != KEYRING_FORMAT:
                    raise ValueError(f"format {body.get('format')!r}")
                self.keys = {k: {str(v): w for v, w in versions.items()} for k, versions in body["keys"].items()}
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(f"{self.path}: not a Lifeloop key ring ({exc})",
                                  hint="restore it from the workspace's backup") from None

    def save(self) -> None:
        _write_private(self.path, json.dumps({"format": KEYRING_FORMAT, "keys": self.keys}, indent=2,
                                             sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------- the facade
@dataclass
class Rotation:
    """What a rotation did: the new master version and the data keys re-wrapped under it."""

    version: str
    rewrapped: list[str]


class Keys:
    """A workspace's keys: its key manager and key ring, the data keys they give, and the keyed hash."""

    def __init__(self, manager: KeyManager, ring: KeyRing):
        self.manager = manager
        self.ring = ring
        self._plain: dict[tuple[str, str], bytes] = {}

    # ---------------------------------------------------------------- data keys
    def data_key(self, key_id: str, version: str | None = None) -> tuple[str, bytes]:
        """A data key of the ring: (version, key). No version: the newest, created on first use."""
        versions = self.ring.keys.get(key_id, {})
        if version is None:
            if not versions:
                return self.new_data_key(key_id)
            version = max(versions, key=int)
        if version not in versions:
            raise DataError(f"data key {key_id!r} version {version} is not in {self.ring.path}",
                            hint="restore the key ring from the workspace's backup")
        if (key_id, version) not in self._plain:
            self._plain[(key_id, version)] = self.manager.unwrap(key_id, versions[version])
        return version, self._plain[(key_id, version)]

    def new_data_key(self, key_id: str) -> tuple[str, bytes]:
        """A new random version of a data key, wrapped by the current master key and kept in the ring."""
        versions = self.ring.keys.setdefault(key_id, {})
        version = str(max((int(v) for v in versions), default=0) + 1)
        key = secrets.token_bytes(KEY_BYTES)
        versions[version] = self.manager.wrap(key_id, key)
        self.ring.save()
        self._plain[(key_id, version)] = key
        return version, key

    def keyed_hash(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 (hex) of ``value`` under a key derived for ``purpose`` from the workspace's hash key.

        Stable across master-key rotations (the hash key is re-wrapped, never replaced), different per
        purpose (a suppression record's hash does not match a blind index of the same value), and useless
        to whoever lacks the keys (no dictionary of mobiles or ID numbers reverses it).
        """
        if not purpose:
            raise ValueError("keyed_hash needs a purpose (e.g. 'suppression.id_number')")
        _, root = self.data_key(HASH_KEY, "1") if HASH_KEY in self.ring.keys else self.data_key(HASH_KEY)
        derived = hmac.new(root, b"lifeloop keyed hash/" + purpose.encode("utf-8"), hashlib.sha256).digest()
        return hmac.new(derived, value.encode("utf-8"), hashlib.sha256).hexdigest()

    # ---------------------------------------------------------------- rotation
    def rotate(self) -> Rotation:
        """A new master-key version; every data key of the ring re-wrapped under it (unwrapped with the old)."""
        plain = {(k, v): self.data_key(k, v)[1] for k, versions in self.ring.keys.items() for v in versions}
        version = self.manager.rotate()
        for (key_id, v), key in plain.items():
            self.ring.keys[key_id][v] = self.manager.wrap(key_id, key)
        self.ring.save()
        return Rotation(version, sorted(f"{k}#{v}" for k, v in plain))

    def wrapped_versions(self) -> dict[str, int]:
        """Master-key version -> how many data keys of the ring it wraps."""
        out: dict[str, int] = {}
        for versions in self.ring.keys.values():
            for wrapped in versions.values():
                out[version_of(wrapped)] = out.get(version_of(wrapped), 0) + 1
        return out


def open_keys(workspace: Path, provider: str = "file", path: str = DEFAULT_KEY_FILE,
              keyring: str = DEFAULT_KEYRING, options: dict[str, Any] | None = None) -> Keys:
    """The workspace's keys as lifeloop.yaml's ``keys:`` section describes them (paths relative to it)."""
    return Keys(load_key_manager(provider, workspace / path, options), KeyRing(workspace / keyring))
