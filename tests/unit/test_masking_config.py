"""``config/masking.yaml`` and the checks that keep every output masked: a policy cannot show a full PAN or C3,
and a file export cannot be unmasked by configuration (``recipient_role: admin``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lifeloop.config.channels import ChannelsConfig
from lifeloop.config.loader import ConfigFolder, load_model
from lifeloop.config.masking import MaskingConfig, masking_policy
from lifeloop.context import Context
from lifeloop.data.masking import DEFAULT_POLICY, AccessError, mask_money, mask_row
from lifeloop.errors import ConfigError
from lifeloop.execution.channels.files import FileChannel
from lifeloop.preflight import check_workspace


def problems(path):
    with pytest.raises(ConfigError) as caught:
        load_model(MaskingConfig, path)
    return caught.value.problems


def test_without_the_file_the_built_in_policy_holds(tmp_path):
    policy = masking_policy(ConfigFolder(tmp_path))
    assert dict(policy.roles) == dict(DEFAULT_POLICY.roles) and policy.source == "built-in defaults"


def test_a_role_named_in_the_file_is_defined_there_in_full_and_the_others_keep_their_defaults(tmp_path):
    (tmp_path / "masking.yaml").write_text(
        "version: 1\nroles:\n  analyst:\n    show: [birth_date]\n    money: exact\n"
        "  rm:\n    show: [name]\n", encoding="utf-8")
    policy = masking_policy(ConfigFolder(tmp_path, tmp_path.parent))
    analyst, rm = policy.role("analyst"), policy.role("rm")
    assert analyst.unmasked == {"birth_date", "money"} and mask_money(Decimal("51250.50"), analyst) == 51250.5
    # rm: only the name now, money banded (not said: masked), still its own book only
    assert rm.unmasked == {"name"} and not rm.money_exact and rm.own_customers_only
    assert mask_row("customers", {"name": "李娜", "mobile": "13812341234"}, rm)[0] == {
        "name": "李娜", "mobile": "138****1234"}
    assert policy.role("compliance") == DEFAULT_POLICY.role("compliance")
    with pytest.raises(AccessError, match="may unmask on request: nothing"):
        policy.viewer("analyst", {"mobile"})


def test_a_policy_that_shows_a_full_card_number_or_c3_is_refused_with_file_line_and_field(tmp_path):
    path = tmp_path / "masking.yaml"
    path.write_text("version: 1\n"
                    "roles:\n"
                    "  rm:\n"
                    "    show:\n"
                    "      - name\n"
                    "      - pan\n"                       # line 6
                    "    unmask_on_request: [cvv]\n"     # line 7
                    "  analist:\n"                       # line 8
                    "    show: [mobil]\n", encoding="utf-8")
    found = {(p.line, p.field): p.message for p in problems(path)}
    assert "PCI DSS 3.3" in found[(6, "roles.rm.show[1]")] and "first 6 and last 4" in found[(6, "roles.rm.show[1]")]
    assert "C3" in found[(7, "roles.rm.unmask_on_request[0]")]
    assert "did you mean 'analyst'" in found[(8, "roles.analist")]
    assert all(p.file == str(path) for p in problems(path))


def test_money_is_said_with_money_exact_not_under_show(tmp_path):
    path = tmp_path / "masking.yaml"
    path.write_text("version: 1\nroles:\n  analyst:\n    show: [money]\n", encoding="utf-8")
    assert "money: exact" in problems(path)[0].message


def test_check_reads_masking_yaml_and_names_its_problems(tmp_path):
    with Context.init(tmp_path / "ws") as ctx:
        (ctx.config_dir / "masking.yaml").write_text("version: 1\nroles:\n  admin:\n    show: [password]\n",
                                                     encoding="utf-8")
        report = check_workspace(ctx.config_dir)
    assert "config/masking.yaml" in report.files
    [p] = report.errors
    assert (p.file, p.line, p.field) == ("config/masking.yaml", 4, "roles.admin.show[0]") and "C3" in p.message


@pytest.mark.parametrize("recipient, why", [("admin", "never unmasked by configuration"),
                                            ("compliance", "never unmasked by configuration"),
                                            ("branch_manager", "not split by branch")])
def test_a_file_export_for_a_role_that_unmasks_only_on_request_is_refused_with_file_line_and_field(tmp_path,
                                                                                                 recipient, why):
    path = tmp_path / "channels.yaml"
    path.write_text(f"version: 1\nchannels:\n  call:\n    kind: file\n    recipient_role: {recipient}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_model(ChannelsConfig, path)
    [p] = caught.value.problems
    # the line of the channel entry (the loader does not yet map a discriminated union's tag to a deeper line)
    assert p.file == str(path) and p.line == 3 and p.field == "channels.call.file.recipient_role"
    assert why in p.message
    with pytest.raises(AccessError, match=why):
        FileChannel("call", tmp_path, recipient_role=recipient)


def test_check_refuses_an_export_for_a_role_masking_yaml_lets_unmask_on_request(tmp_path):
    with Context.init(tmp_path / "ws") as ctx:
        cfg = ctx.config_dir
        (cfg / "masking.yaml").write_text("version: 1\nroles:\n  analyst:\n    unmask_on_request: [mobile]\n",
                                          encoding="utf-8")
        channels = cfg / "channels.yaml"
        text = channels.read_text(encoding="utf-8")
        old = "  call: {kind: file, folder: exports, format: xlsx, recipient_role: analyst}"
        assert text.count(old) == 1
        channels.write_text(text.replace(old, "  call:\n    kind: file\n    recipient_role: analyst"),
                            encoding="utf-8")
        report = check_workspace(cfg)
    refused = {e.field: e for e in report.errors if e.file == "config/channels.yaml"}
    # every file channel of the template exports for the analyst: each one is named
    files = ("sms", "push", "email", "wechat", "call", "branch")
    assert set(refused) == {f"channels.{c}.recipient_role" for c in files}
    p = refused["channels.call.recipient_role"]
    line = 2 + next(i for i, s in enumerate(channels.read_text(encoding="utf-8").splitlines(), 1) if s == "  call:")
    assert (p.line, p.field) == (line, "channels.call.recipient_role") and "only on request" in p.message
