"""Channel settings (``config/channels.yaml``): where each contact channel's messages go.

One entry per channel: a webhook gateway (SMS / push / e-mail providers), a file export (CSV or Excel
for call centres and branches, personal data masked for the recipient's role), the relationship
managers' worklists, or the simulated bank. Channels not listed are not dispatched (their contacts
stay pending in the outbox, so nothing is lost when a channel is switched on later).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from lifeloop.config.models import Strict
from lifeloop.config.types import TimeOfDay
from lifeloop.data.masking import ROLES
from lifeloop.data.schema import CONTACT_CHANNELS


class WebhookSettings(Strict):
    """An HTTP gateway: one POST per contact, the idempotency key in a header.

    ``dedupes_by_key``: does the provider drop a second request with the same key? Only say yes when its
    contract says so. Without it (the default) a send whose outcome is unknown (a timeout after the
    request was written) is never re-sent: it is checked with ``status_url`` when the provider has one
    (a GET, ``{key}`` replaced by the key: 200 delivered, 404 not there), ``reconcile_after_seconds``
    after the attempt, or else waits for an operator (``lifeloop outbox unknown``).
    """

    kind: Literal["webhook"]
    url: str
    timeout_seconds: float = Field(5.0, gt=0, le=120)
    retries: int = Field(3, ge=0, le=10)             # quick retries inside one attempt, before the outbox backoff
    backoff_seconds: float = Field(0.5, gt=0, le=60)  # first quick retry's wait; doubles, with jitter
    max_inline_wait_seconds: float = Field(10.0, ge=0, le=600)  # a longer Retry-After goes back to the outbox
    key_header: str = "Idempotency-Key"
    breaker: int = Field(3, ge=1, le=1000)  # contacts failing to connect in a row before the batch goes back untried
    headers: dict[str, str] = {}
    dedupes_by_key: bool = False                     # the provider drops a resend with the same key
    status_url: str | None = None                    # GET with {key}: 200 delivered, 404 not there
    reconcile_after_seconds: float = Field(30.0, ge=0, le=86_400)  # settle time before asking status_url

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"url {value!r} must start with http:// or https://")
        return value

    @field_validator("status_url")
    @classmethod
    def _status_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"status_url {value!r} must start with http:// or https://")
        if "{key}" not in value:
            raise ValueError(f"status_url {value!r} must contain {{key}}, where the idempotency key goes "
                             "(e.g. https://sms.bank.internal/status/{key})")
        return value


class FileSettings(Strict):
    """A file export for people who call or meet customers (call centre, branches)."""

    kind: Literal["file"]
    folder: str = "exports"                       # relative to the workspace
    format: Literal["csv", "xlsx"] = "csv"
    recipient_role: str = "analyst"               # masking role of whoever receives the file (not admin/compliance)

    @field_validator("recipient_role")
    @classmethod
    def _known_role(cls, value: str) -> str:

        if value not in ROLES:
            raise ValueError(f"unknown role {value!r}; expected one of {', '.join(ROLES)}")
        if ROLES[value].needs_reason:
            # docs/security.md: an export is never unmasked by configuration (PIPL Art. 51; JR/T 0171 C2)
            raise ValueError(f"recipient_role {value!r} sees personal data unmasked only on request, with a reason; "
                             "a file export is never unmasked by configuration: use analyst (masked) or rm "
                             "(each RM their own customers)")
        if ROLES[value].scope == "branch":
            raise ValueError(f"recipient_role {value!r} reads one branch's customers, but a file export is not split "
                             "by branch: use rm (one file per relationship manager) or analyst (masked)")
        return value


class WorklistSettings(Strict):
    """Relationship-manager worklists: each contact becomes a task for the customer's own RM."""

    kind: Literal["worklist"]
    due_in_days: int = Field(3, ge=0, le=60)


class SimulatorSettings(Strict):
    """The simulated bank: contacts are queued for its next ``advance`` (``lifeloop advance``)."""

    kind: Literal["simulator"]
    bank: str = "extracts"                        # the simulated bank's folder, relative to the workspace
    # also a task in the customer's RM's worklist, due in this many days (as a worklist channel makes): the demo's
    # RM calls reach the simulated bank and show in the RM's worklist on the web; null: the bank only
    worklist_due_in_days: int | None = Field(None, ge=0, le=60)


ChannelSettings = Annotated[WebhookSettings | FileSettings | WorklistSettings | SimulatorSettings,
                            Field(discriminator="kind")]


class ApprovalSettings(Strict):
    """``approvals:`` when a day's send waits for a second person (双人复核) before anything of it goes out.

    A strategy's contacts on one day above ``max_contacts_per_strategy``, or the day's contacts above
    ``max_contacts_per_day``, are held until someone other than the requester approves them (``lifeloop
    approve``); so is every file export whose recipient sees personal data unmasked (no setting turns that off).
    ``approvers`` lists who may approve (empty: anyone but the requester) — interim, until principals land.
    """

    max_contacts_per_strategy: int = Field(5_000, ge=1)
    max_contacts_per_day: int = Field(20_000, ge=1)
    approvers: list[str] = []


class RepliesSettings(Strict):
    """``replies:`` what an inbound reply must say to be an opt-out (退订), compared ignoring case, width,
    surrounding spaces and punctuation ("td", "ＴＤ", " 退订。" all match)."""

    opt_out_words: list[str] = Field(default_factory=lambda: ["TD", "退订", "T", "STOP"], min_length=1)


class ChannelsConfig(Strict):
    """``config/channels.yaml``: channel -> where its contacts go, and how dispatch drains the outbox."""

    version: Literal[1] = 1
    language: Literal["zh", "en"] = "zh"          # which script text is sent
    batch_size: int = Field(200, ge=1, le=10_000)
    max_attempts: int = Field(5, ge=1, le=50)
    # the send-time gate re-reads consent, do-not-disturb and refusals at least this often while a batch
    # goes out (seconds; docs/execution.md, "The contact gate"); at most 60 (the promise to customers)
    fresh_seconds: float = Field(10.0, gt=0, le=60)
    # replays and the simulated bank only: dispatch day D as if it were this local time on D (HH:MM),
    # instead of the real clock; a bank's live workspace leaves it unset
    replay_at: TimeOfDay("19:00", "replay_at") | None = None
    channels: dict[str, ChannelSettings] = {}
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings)
    replies: RepliesSettings = Field(default_factory=RepliesSettings)

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: dict[str, object]) -> dict[str, object]:
        unknown = [name for name in value if name not in CONTACT_CHANNELS]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], CONTACT_CHANNELS, n=1)
            raise ValueError(f"unknown channel {unknown[0]!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                             + f" (channels are {', '.join(CONTACT_CHANNELS)})")
        return value
