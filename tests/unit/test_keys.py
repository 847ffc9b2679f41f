"""Keys the bank holds: the 0600 key file, wrapping under versioned master keys, rotation, the keyed hash."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeloop.errors import ConfigError, DataError
from lifeloop.store.keys import FileKeyManager, KeyManager, KeyRing, Keys, load_key_manager, open_keys, version_of


def keys_in(tmp_path) -> Keys:
    FileKeyManager.create(tmp_path / "keys" / "lifeloop.keys")
    return open_keys(tmp_path)


def test_a_new_key_file_is_private_and_holds_one_256_bit_master_key(tmp_path):
    manager = FileKeyManager.create(tmp_path / "k.keys")
    assert oct(os.stat(tmp_path / "k.keys").st_mode & 0o777) == "0o600"
    body = json.loads((tmp_path / "k.keys").read_text())
    assert body["current"] == 1 and len(body["masters"]) == 1
    assert manager.current_version() == "1" and isinstance(manager, KeyManager)
    with pytest.raises(ConfigError, match="already exists"):
        FileKeyManager.create(tmp_path / "k.keys")   # never overwritten: data encrypted under it would be lost


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_may_read_is_refused_with_the_chmod_that_fixes_it(tmp_path, mode):
    FileKeyManager.create(tmp_path / "k.keys")
    os.chmod(tmp_path / "k.keys", mode)
    with pytest.raises(ConfigError) as info:
        FileKeyManager(tmp_path / "k.keys")
    assert f"mode {mode:04o}" in info.value.message and f"chmod 600 {tmp_path / 'k.keys'}" in info.value.hint


def test_a_missing_or_damaged_key_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="key file not found") as info:
        FileKeyManager(tmp_path / "none.keys")
    assert "lifeloop keys init" in info.value.hint
    bad = tmp_path / "bad.keys"
    bad.write_text("{}")
    os.chmod(bad, 0o600)
    with pytest.raises(ConfigError, match="not a Lifeloop key file"):
        FileKeyManager(bad)


def test_wrapping_is_bound_to_the_key_id_and_names_the_master_version(tmp_path):
    manager = FileKeyManager.create(tmp_path / "k.keys")
    data_key = os.urandom(32)
    wrapped = manager.wrap("ops.c2", data_key)
    assert version_of(wrapped) == "1" and data_key.hex() not in wrapped
    assert manager.unwrap("ops.c2", wrapped) == data_key
    with pytest.raises(DataError, match="does not unwrap"):
        manager.unwrap("lake.c2", wrapped)      # the key id is the associated data
    other = FileKeyManager.create(tmp_path / "other.keys")
    with pytest.raises(DataError, match="does not unwrap"):
        other.unwrap("ops.c2", wrapped)         # another bank's (or workspace's) key file


def test_rotation_adds_a_version_rewraps_every_data_key_and_old_wrappings_still_unwrap(tmp_path):
    keys = keys_in(tmp_path)
    _, ops_key = keys.data_key("ops.c2")
    before = keys.keyed_hash("blind-index/x", "13800138000")
    old_wrapped = keys.ring.keys["ops.c2"]["1"]
    rotation = keys.rotate()
    assert rotation.version == "2" and rotation.rewrapped == ["hash#1", "ops.c2#1"]
    assert keys.wrapped_versions() == {"2": 2}        # nothing is wrapped by version 1 any more
    reopened = open_keys(tmp_path)                    # from the files, as the next process sees them
    assert reopened.data_key("ops.c2") == ("1", ops_key)
    assert reopened.keyed_hash("blind-index/x", "13800138000") == before   # stable across rotations
    assert reopened.manager.unwrap("ops.c2", old_wrapped) == ops_key      # version 1 is kept for reading
    assert json.loads((tmp_path / "keys" / "lifeloop.keys").read_text())["current"] == 2


def test_the_keyed_hash_is_hmac_sha256_under_a_key_derived_per_purpose(tmp_path):
    keys = keys_in(tmp_path)
    _, root = keys.data_key("hash")
    derived = hmac.new(root, b"lifeloop keyed hash/suppression.id_number", hashlib.sha256).digest()
    expected = hmac.new(derived, b"110101199003077777", hashlib.sha256).hexdigest()
    assert keys.keyed_hash("suppression.id_number", "110101199003077777") == expected
    assert keys.keyed_hash("suppression.mobile", "110101199003077777") != expected
    assert keys_in(tmp_path / "other").keyed_hash("suppression.id_number", "110101199003077777") != expected
    with pytest.raises(ValueError, match="purpose"):
        keys.keyed_hash("", "x")


@settings(max_examples=25, deadline=None)
@given(a=st.text(max_size=40), b=st.text(max_size=40))
def test_the_keyed_hash_is_equal_exactly_for_equal_values(tmp_path_factory, a, b):
    keys = _shared_keys(tmp_path_factory)
    assert (keys.keyed_hash("p", a) == keys.keyed_hash("p", b)) == (a == b)


_KEYS: dict[str, Keys] = {}


def _shared_keys(factory) -> Keys:
    if "k" not in _KEYS:
        _KEYS["k"] = keys_in(factory.mktemp("hashkeys"))
    return _KEYS["k"]


def test_a_bank_kms_is_named_as_python_module_class_and_must_wrap_unwrap_and_rotate(tmp_path):
    manager = load_key_manager("python:tests.unit.test_keys:ToyKms", tmp_path, {"label": "hsm-1"})
    keys = Keys(manager, KeyRing(tmp_path / "ring.json"))
    version, key = keys.data_key("ops.c2")
    assert manager.calls == ["wrap"]   # the data key was wrapped by the bank's KMS, kept only wrapped
    assert Keys(manager, KeyRing(tmp_path / "ring.json")).data_key("ops.c2") == (version, key)
    assert manager.calls == ["wrap", "unwrap"] and key.hex() not in (tmp_path / "ring.json").read_text()
    with pytest.raises(ConfigError, match="lacks"):
        load_key_manager("python:tests.unit.test_keys:NotAKms", tmp_path)
    with pytest.raises(ConfigError, match="cannot load"):
        load_key_manager("python:tests.unit.nowhere:Kms", tmp_path)
    with pytest.raises(ConfigError, match="is not a key manager"):
        load_key_manager("vault", tmp_path)


class ToyKms:
    """A stand-in for a bank's KMS client (XOR with a fixed pad: for the interface test only)."""

    def __init__(self, label: str):
        self.label, self.calls, self.pad = label, [], bytes(range(32))

    def wrap(self, key_id: str, data_key: bytes) -> str:
        self.calls.append("wrap")
        return f"toy:1:{bytes(a ^ b for a, b in zip(data_key, self.pad, strict=True)).hex()}"

    def unwrap(self, key_id: str, wrapped: str) -> bytes:
        self.calls.append("unwrap")
        return bytes(a ^ b for a, b in zip(bytes.fromhex(wrapped.split(":")[2]), self.pad, strict=True))

    def rotate(self) -> str:
        return "1"

    def current_version(self) -> str:
        return "1"


class NotAKms:
    def wrap(self, key_id: str, data_key: bytes) -> str:
        return ""
