"""Channel adapters: what the webhook retries and how, and what a file export shows its recipient."""

from __future__ import annotations

import csv
import datetime as dt
import json

import httpx
import pytest

from lifeloop.config.channels import ChannelsConfig
from lifeloop.config.loader import load_model
from lifeloop.errors import ConfigError
from lifeloop.execution.channels.base import Message
from lifeloop.execution.channels.files import FileChannel
from lifeloop.execution.channels.webhook import WebhookChannel, parse_retry_after

D = dt.date(2026, 3, 2)


def message(i: int = 1, **kw) -> Message:
    fields = dict(dispatch_id=i, key=f"key-{i}", as_of=D, customer_id=f"C{i:03d}", strategy_id="honeymoon",
                  wave="d1", channel="sms", offer="WM090", priority=10, script="张**先生，欢迎！",
                  customer={"name": "张小明", "mobile": "13812341234"}, rm_id="RM001")
    fields.update(kw)
    return Message(**fields)


def channel(responses, sleeps, **kw):
    """A webhook adapter whose 'network' answers from a list (a response or an exception per request)."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    ch = WebhookChannel("sms", "http://127.0.0.1:9/send", transport=httpx.MockTransport(handler),
                        sleep=sleeps.append, backoff=0.5, **kw)
    return ch, seen


def test_a_429_waits_the_retry_after_then_delivers_with_the_same_idempotency_key():
    sleeps = []
    ch, seen = channel([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={"id": "P1"})],
                       sleeps)
    result = ch.send_one(message())
    assert result.ok and result.provider_ref == "P1"
    assert sleeps[0] >= 3
    assert [r.headers["Idempotency-Key"] for r in seen] == ["key-1", "key-1"]


def test_a_5xx_is_retried_after_a_jittered_exponential_backoff():
    sleeps = []
    ch, _ = channel([httpx.Response(503), httpx.Response(500), httpx.Response(200)], sleeps)
    assert ch.send_one(message()).ok
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_a_400_is_not_retried_and_the_providers_reason_is_kept():
    sleeps = []
    ch, seen = channel([httpx.Response(400, text="invalid mobile number")], sleeps)
    result = ch.send_one(message())
    assert not result.ok and not result.retryable
    assert result.error == "HTTP 400: invalid mobile number"
    assert len(seen) == 1 and sleeps == []


def test_for_a_deduplicating_provider_timeouts_and_dropped_connections_are_retried_then_handed_back():
    sleeps = []
    ch, seen = channel([httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.RemoteProtocolError("drop")],
                       sleeps, retries=2, dedupes_by_key=True)
    result = ch.send_one(message())
    assert not result.ok and result.retryable and "connection error" in result.error
    assert len(seen) == 3 and len(sleeps) == 2


def test_a_retry_after_longer_than_the_inline_limit_goes_back_to_the_outbox_with_the_wait():
    sleeps = []
    ch, seen = channel([httpx.Response(429, headers={"Retry-After": "600"})], sleeps, max_inline_wait=10)
    result = ch.send_one(message())
    assert result.retryable and result.retry_after == dt.timedelta(seconds=600)
    assert sleeps == [] and len(seen) == 1


def test_retry_after_as_an_http_date_is_the_time_left_until_then():
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    assert parse_retry_after("Mon, 02 Mar 2026 12:02:00 GMT", now=now) == dt.timedelta(minutes=2)
    assert parse_retry_after("soon", now=now) is None and parse_retry_after(None) is None


def test_the_webhook_body_carries_the_masked_script_but_no_raw_personal_data():
    sleeps = []
    ch, seen = channel([httpx.Response(200)], sleeps)
    ch.send_one(message())
    text = seen[0].content.decode()
    assert "张**先生" in text and "张小明" not in text and "13812341234" not in text


def test_a_webhook_receives_only_its_declared_fields_never_the_customers_details():
    from lifeloop.execution.channels.webhook import BODY_FIELDS, body

    details = {"name": "张小明", "mobile": "13812341234", "id_number": "110101199001011234",
               "account_id": "6222020012345678", "email": "z@example.com"}
    sent = body(message(customer=details))
    assert tuple(sent) == BODY_FIELDS
    text = json.dumps(sent, ensure_ascii=False)
    assert all(v not in text for v in details.values())


def read_csv(path):
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_call_centre_file_masks_names_and_mobiles_for_an_analyst_recipient(tmp_path):
    ch = FileChannel("call", tmp_path, format="csv", recipient_role="analyst")
    results = ch.send([message(1), message(2, priority=90, customer={"name": "Alice Smith", "mobile": "13900001111"})])
    assert all(r.ok for r in results)
    rows = read_csv(ch.written[0])
    assert [r["customer_id"] for r in rows] == ["C002", "C001"]        # most important first
    assert rows[1]["name"] == "张*明" and rows[1]["mobile"] == "138****1234"
    assert rows[0]["name"] == "A*********h" and rows[0]["mobile"] == "139****1111"
    assert rows[1]["contact_key"] == "key-1"


def test_with_the_rm_role_each_rm_gets_a_file_of_their_own_customers_only(tmp_path):
    ch = FileChannel("branch", tmp_path, format="xlsx", recipient_role="rm")
    results = ch.send([message(1, rm_id="RM001"), message(2, rm_id="RM002"), message(3, rm_id="RM001"),
                       message(4, rm_id=None)])
    assert [r.ok for r in results if r.dispatch_id == 4] == [False]
    from openpyxl import load_workbook

    owners = {}
    for path in ch.written:
        sheet = load_workbook(path).active
        header = [c.value for c in sheet[1]]
        rows = [dict(zip(header, [c.value for c in row], strict=False)) for row in sheet.iter_rows(min_row=2)]
        owners[path.parent.name] = {(r["customer_id"], r["rm_id"], r["name"]) for r in rows}
    assert owners == {"RM001": {("C001", "RM001", "张小明"), ("C003", "RM001", "张小明")},
                      "RM002": {("C002", "RM002", "张小明")}}


def test_an_unknown_recipient_role_is_refused():
    from lifeloop.data.masking import AccessError

    with pytest.raises(AccessError, match="did you mean 'analyst'"):
        FileChannel("call", "/tmp", recipient_role="analist")


def test_channels_yaml_names_a_misspelt_channel_and_an_unknown_role_with_file_and_line(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text("version: 1\nchannels:\n  smss: {kind: file}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_model(ChannelsConfig, path)
    assert "did you mean 'sms'?" in caught.value.render()
    path.write_text("version: 1\nchannels:\n  call:\n    kind: file\n    recipient_role: cashier\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_model(ChannelsConfig, path)
    text = caught.value.render()
    # the line of the channel entry (the loader does not yet map a discriminated union's tag to a deeper line)
    assert "channels.yaml:3" in text and "recipient_role" in text and "unknown role 'cashier'" in text


def test_the_bank_templates_channels_work_offline():
    from pathlib import Path

    import lifeloop

    template = Path(lifeloop.__file__).parent / "templates" / "bank" / "config" / "channels.yaml"
    config, _ = load_model(ChannelsConfig, template)
    assert {name: s.kind for name, s in config.channels.items()} == {
        "sms": "file", "push": "file", "email": "file", "wechat": "file", "call": "file", "branch": "file",
        "rm": "worklist"}


def test_when_the_gateway_is_unreachable_the_rest_of_the_batch_goes_back_to_the_outbox_untried():
    sleeps = []
    ch, seen = channel([httpx.ConnectError("refused")] * 6, sleeps, retries=1, breaker=3)
    results = ch.send([message(i) for i in range(1, 7)])
    assert len(seen) == 6                    # 3 contacts x 2 tries, then no more requests
    assert all(r.retryable and not r.ok for r in results)
    assert [r.error.startswith("not tried") for r in results] == [False] * 3 + [True] * 3


@pytest.mark.parametrize("answer", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"),
                                    httpx.Response(504), httpx.Response(502)])
def test_for_a_provider_that_does_not_deduplicate_a_send_of_unknown_outcome_is_never_retried(answer):
    sleeps = []
    ch, seen = channel([answer, httpx.Response(200)], sleeps, retries=3)
    assert not ch.capabilities.dedupes_by_key   # the default: the provider is not trusted to drop a resend
    result = ch.send_one(message())
    assert result.unknown and not result.ok and len(seen) == 1 and sleeps == []


def test_a_refused_connection_or_a_connect_timeout_certainly_sent_nothing_and_is_retried_even_without_dedup():
    sleeps = []
    ch, seen = channel([httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.Response(503),
                        httpx.Response(200, json={"id": "P9"})], sleeps, retries=3)
    result = ch.send_one(message())
    assert result.ok and result.provider_ref == "P9" and len(seen) == 4


def test_each_message_is_announced_before_its_first_request_and_reported_as_soon_as_it_is_known():
    events = []
    ch, seen = channel([httpx.Response(200), httpx.Response(500), httpx.Response(200)], [], retries=1)

    def before(m):
        events.append(("before", m.key, len(seen)))
        return m.key != "key-3"       # the third is no longer ours: not sent

    results = ch.send([message(1), message(2), message(3)], before=before,
                      after=lambda r: events.append(("after", r.dispatch_id, r.ok)))
    assert events == [("before", "key-1", 0), ("after", 1, True), ("before", "key-2", 1), ("after", 2, True),
                      ("before", "key-3", 3), ("after", 3, False)]
    assert len(seen) == 3 and results[2].error.startswith("not tried")


def test_the_status_look_up_says_delivered_on_200_not_there_on_404_and_nothing_otherwise():
    answers = {"k200": httpx.Response(200, json={"id": "P1"}), "k404": httpx.Response(404),
               "k500": httpx.Response(500)}
    urls = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return answers[request.url.path.rsplit("/", 1)[1]]

    ch = WebhookChannel("sms", "http://127.0.0.1:9/send", transport=httpx.MockTransport(handler),
                        status_url="http://127.0.0.1:9/status/{key}")
    assert ch.capabilities.status_lookup
    found = ch.lookup("k200")
    assert (found.delivered, found.provider_ref) == (True, "P1")
    assert ch.lookup("k404").delivered is False
    assert ch.lookup("k500") is None
    assert urls[0] == "http://127.0.0.1:9/status/k200"


def test_channels_yaml_declares_dedup_and_a_status_url_with_the_key_and_defaults_to_no_dedup(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text("channels:\n  sms: {kind: webhook, url: 'https://gw/send'}\n"
                    "  push: {kind: webhook, url: 'https://gw/push', dedupes_by_key: true}\n", encoding="utf-8")
    config, _ = load_model(ChannelsConfig, path)
    assert (config.channels["sms"].dedupes_by_key, config.channels["push"].dedupes_by_key) == (False, True)
    path.write_text("channels:\n  sms: {kind: webhook, url: 'https://gw/send', status_url: 'https://gw/status'}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"must contain \{key\}"):
        load_model(ChannelsConfig, path)
