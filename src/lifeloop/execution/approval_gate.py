"""Which of a day's contacts wait for a second person (双人复核), in the dispatch path.

Dispatch holds a big day's send, and every file export whose recipient sees personal data unmasked,
when it enqueues them (:func:`lifeloop.store.ops.approvals.hold_new`); the outbox never claims a held
item, so neither ``lifeloop dispatch`` nor any later drain sends it until ``lifeloop approve send``
releases it. This module turns ``channels.yaml`` (or the adapters in hand) into those rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifeloop.config.channels import ChannelsConfig
from lifeloop.data.masking import Policy
from lifeloop.data.masking import role as get_role
from lifeloop.execution.channels.files import PERSONAL, FileChannel
from lifeloop.store.ops.approvals import Rules


def unmasks(role_name: str, masking: Policy | None = None) -> bool:
    """Whether a file for this recipient role shows a personal field of the export (name, mobile) unmasked,
    under the masking policy in force (``config/masking.yaml``; default the built-in one)."""
    return bool(set(PERSONAL) & get_role(role_name, masking).unmasked)


def rules_from_config(config: ChannelsConfig, masking: Policy | None = None) -> Rules:
    """The approval rules of ``channels.yaml``: its sizes, and its file channels that export unmasked data."""
    unmasked = frozenset(name for name, s in config.channels.items()
                         if s.kind == "file" and unmasks(s.recipient_role, masking))
    return Rules(config.approvals.max_contacts_per_strategy, config.approvals.max_contacts_per_day, unmasked)


def rules_from_adapters(adapters: Mapping[str, Any] | None) -> Rules:
    """The default sizes, and the file adapters in hand that export unmasked data (when no config is given)."""
    unmasked = frozenset(name for name, a in (adapters or {}).items()
                         if isinstance(a, FileChannel) and unmasks(a.role, a.policy))
    return Rules(unmasked_channels=unmasked)
