"""Inbound SMS replies: which texts are opt-outs, and the webhook body parser (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from lifeloop.errors import DataError
from lifeloop.execution.bank_customers import normalise_mobile
from lifeloop.execution.replies import is_opt_out, normalise, parse_webhook


@pytest.mark.parametrize("text", ["TD", "td", " Td ", "ＴＤ", "退订", " 退订。", "T", "t!", "STOP", "stop.", "【TD】",
                                  "\u3000退订\u3000", "Stop!!"])
def test_an_opt_out_word_counts_whatever_its_case_width_spaces_or_punctuation(text):
    assert is_opt_out(text)


@pytest.mark.parametrize("text", ["", "好的", "what is TD?", "请不要退订", "STOP IT NOW", "TDD", "thanks"])
def test_a_sentence_that_is_not_an_opt_out_word_as_a_whole_is_not_an_opt_out(text):
    assert not is_opt_out(text)


def test_the_opt_out_words_are_configurable():
    assert is_opt_out("取消", ["取消", "TD"]) and not is_opt_out("STOP", ["取消", "TD"])
    assert normalise("  ＳＴＯＰ！ ") == "stop"


def test_a_webhook_body_gives_a_reply_with_its_time_in_utc():
    reply = parse_webhook(b'{"mobile": "+86 138-1234-5678", "text": "TD", "received_at": "2026-03-02 10:00:00"}',
                          timezone="Asia/Shanghai")
    assert reply.mobile == "13812345678" and reply.text == "TD" and reply.channel == "sms"
    assert reply.received_at == dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


def test_a_webhook_body_without_sender_or_time_is_refused_naming_each_field():
    with pytest.raises(DataError) as err:
        parse_webhook({"text": "TD", "received_at": "yesterday"})
    assert [p.field for p in err.value.problems] == ["mobile", "received_at"]
    with pytest.raises(DataError, match="not a JSON object"):
        parse_webhook("[1, 2]")
    with pytest.raises(DataError, match="not JSON"):
        parse_webhook("TD")


def test_a_mainland_mobile_loses_its_country_code_and_punctuation():
    assert normalise_mobile("+86 138 1234 5678") == normalise_mobile("0086-13812345678") == "13812345678"
    assert normalise_mobile("13812345678") == "13812345678"
