"""The approval rules dispatch reads from channels.yaml: sizes, approvers, and which exports show data unmasked."""

from __future__ import annotations

import pydantic
import pytest

from lifeloop.config.channels import ChannelsConfig
from lifeloop.execution.approval_gate import rules_from_config, unmasks
from lifeloop.store.ops.approvals import Rules


def test_defaults_hold_a_strategy_above_5000_and_a_day_above_20000_and_no_masked_export():
    config = ChannelsConfig.model_validate({"channels": {"sms": {"kind": "file", "recipient_role": "analyst"}}})
    assert rules_from_config(config) == Rules(5_000, 20_000, frozenset())
    assert config.replies.opt_out_words == ["TD", "退订", "T", "STOP"]


def test_file_exports_to_a_role_that_sees_names_or_mobiles_always_need_approval():
    config = ChannelsConfig.model_validate({
        "approvals": {"max_contacts_per_strategy": 100, "max_contacts_per_day": 300, "approvers": ["bob"]},
        "channels": {"branch": {"kind": "file", "recipient_role": "rm"},
                     "call": {"kind": "file", "recipient_role": "approver"},
                     "sms": {"kind": "file", "recipient_role": "analyst"}, "rm": {"kind": "worklist"}}})
    assert rules_from_config(config) == Rules(100, 300, frozenset({"branch"}))
    # admin and compliance see names masked unless granted (and are never an export's recipient)
    assert unmasks("rm") and unmasks("branch_manager") and not unmasks("analyst") and not unmasks("admin")


def test_a_misspelt_approvals_key_is_refused():
    with pytest.raises(pydantic.ValidationError, match="max_contact_per_day"):
        ChannelsConfig.model_validate({"approvals": {"max_contact_per_day": 10}})
