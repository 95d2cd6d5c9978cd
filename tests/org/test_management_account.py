"""The organisation's management account (issue 23.3): service-managed StackSets never deploy the member stack
there, so a bot in a delegated administrator account skips it by plan - one line in the sweep's digest and in
``doctor --all-accounts`` - instead of failing it three times a sweep into the dead-letter queue. Deployed there by
hand, ``SAFETYCATCH_MANAGEMENT_ACCOUNT=covered`` brings it back; a bot in the management account covers itself."""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.org import fanout
from chalicelib.org.accounts import uncovered_management_account
from chalicelib.store.state import table_definition
from safetycatch import doctor

MANAGEMENT = "123456789012"  # moto: the account that creates the organisation
TABLE = "safetycatch-mgmt"


@pytest.fixture
def org(aws) -> str:
    orgs = boto3.client("organizations", region_name="us-east-1")
    orgs.create_organization(FeatureSet="ALL")
    delegated = orgs.create_account(AccountName="security", Email="sec@example.com")["CreateAccountStatus"]["AccountId"]
    orgs.create_account(AccountName="shop", Email="shop@example.com")
    return str(delegated)


def test_the_management_account_is_uncovered_only_for_a_bot_elsewhere(org, monkeypatch):
    session = boto3.session.Session(region_name="us-east-1")
    assert uncovered_management_account(session, org) == MANAGEMENT
    assert uncovered_management_account(session, MANAGEMENT) is None  # the bot's own account: covered by itself
    monkeypatch.setenv("SAFETYCATCH_MANAGEMENT_ACCOUNT", "covered")
    assert uncovered_management_account(session, org) is None


def test_a_delegated_bot_sweeps_the_organisation_without_the_management_account(org, aws, make_runtime,
                                                                                monkeypatch):
    aws.client("dynamodb").create_table(**table_definition(TABLE))
    url = aws.client("sqs").create_queue(QueueName="safetycatch-dev-sweep")["QueueUrl"]
    monkeypatch.setenv("SAFETYCATCH_SWEEP_ACCOUNTS", "organization")
    runtime = make_runtime(table=TABLE)
    runtime.account = org  # the bot runs in the delegated administrator account
    run = fanout.start_run(runtime, url)
    bodies = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    swept = {json.loads(m["Body"])["account"] for m in bodies}
    assert run["scopes"] == 2 and MANAGEMENT not in swept and org in swept
    summary = fanout.digest(runtime, run["run_id"])
    text = fanout.digest_text(summary)
    assert summary["not_covered"] == MANAGEMENT
    assert (f"Not covered: {MANAGEMENT}, the organisation's management account (service-managed StackSets never "
            "deploy there); deploy the member stack there by hand, then set SAFETYCATCH_MANAGEMENT_ACCOUNT=covered."
            ) in text

    monkeypatch.setenv("SAFETYCATCH_MANAGEMENT_ACCOUNT", "covered")  # deployed there by hand
    again = fanout.start_run(runtime, url)
    assert again["scopes"] == 3 and "Not covered" not in fanout.digest_text(fanout.digest(runtime, again["run_id"]))


def test_doctor_says_not_covered_once_instead_of_a_missing_member(org, monkeypatch):
    monkeypatch.setattr(doctor.Checker, "__init__", _checker_in(org))
    checker = doctor.Checker(boto3.session.Session(region_name="us-east-1"), doctor.Target.for_stage("dev"))
    monkeypatch.setattr(doctor, "check_member", lambda c, account: [doctor.Item(f"member-role:{account}", "ok", "")])
    items = {i.id: i for i in doctor.check_members(checker)}
    line = items[f"management-account:{MANAGEMENT}"]
    assert line.status == "ok" and line.detail.startswith(f"{MANAGEMENT}: not covered: the organisation's management")
    assert f"member-role:{MANAGEMENT}" not in items and f"member-role:{org}" not in items  # itself: not a member
    assert len([i for i in items if i.startswith("member-role:")]) == 1  # the other member is checked as before


def _checker_in(account: str):
    def init(self, session, target):
        self.session, self.target, self.region, self._clients, self.account = session, target, "us-east-1", {}, account
    return init
