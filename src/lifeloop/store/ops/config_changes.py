"""Config that goes live (配置上线): a run that uses config files whose bytes differ from the last run's is audited.

The audit log keeps, on each ``config.live`` entry, the files that changed (name -> hash) and every file's
hash as of that run (``live``), so the next run compares against the newest entry alone. The first run
of a workspace records every file it uses. PCI DSS 10.2 (changes to the system's configuration) and
CBIRC Order 2022 No 9 (marketing rules are approved and traceable).
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.store.ops import audit
from lifeloop.store.ops.models import AuditEntry

ACTION = "config.live"


def live(session: Session) -> dict[str, str]:
    """File name -> hash of the config as the newest ``config.live`` entry left it (empty before the first run)."""
    entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == ACTION)
                            .order_by(AuditEntry.id.desc()).limit(1)).first()
    return dict(((entry.details or {}).get("live") or {}) if entry is not None else {})


def record_if_changed(session: Session, *, files: Mapping[str, str], actor: str, run: str) -> dict[str, str]:
    """Audit the files (name -> hash) a run uses whose hash differs from the live one; return those changed."""
    before = live(session)
    changed = {name: value for name, value in sorted(files.items()) if before.get(name) != value}
    if changed:
        audit.record(session, actor=actor, action=ACTION, target_type="config", target_id=",".join(changed)[:128],
                     details={"run": run, "changed": changed,
                              "previous": {n: before[n] for n in changed if n in before},
                              "live": {**before, **dict(files)}})
    return changed
