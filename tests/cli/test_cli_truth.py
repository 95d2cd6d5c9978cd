"""Output that tells the truth (issue 16.4): ``notified`` only when a notification was delivered, the scopes
actually scanned, contradictory flags refused, and the contract's ids, times and names on every finding."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.stub import Stubber

from safetycatch.local.slack_local import LocalSlack
from safetycatch.main import main
from tests.org.test_accounts import MEMBER, member_account
from tests.world.cli_helpers import one_line_error, run
from tests.world.slack_helpers import BOT_TOKEN, CHANNEL, create_secret

NOT_CONFIGURED = "not notified: Slack is not configured (set SAFETYCATCH_SLACK_SECRET and SAFETYCATCH_SLACK_CHANNEL)"


def run_json(capsys, *argv):
    """The JSON and the stderr of a successful run."""
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out), err


@pytest.fixture
def mailer(aws):
    """A notify-only finding (env-secrets): the bot changes nothing and has to tell someone."""
    return aws.function("mailer", Environment={"Variables": {"SMTP_PASSWORD": "not-a-real-password-0000"}})


SCAN = ("scan", "--fix", "--no-state", "--checks", "env-secrets", "--format", "json")


def test_without_slack_nothing_is_notified_and_errors_say_why(mailer, capsys):
    data, err = run_json(capsys, *SCAN)
    (finding,) = data["findings"]
    assert finding["outcome"] == "reported" and "not delivered" in finding["detail"]
    assert data["errors"] == [NOT_CONFIGURED]
    assert err == ""  # no raw JSON log line on the terminal


def test_a_failing_slack_is_reported_in_errors(aws, mailer, capsys, monkeypatch):
    create_secret(aws)
    with LocalSlack(token="xoxb-some-other-workspace") as slack:  # our token is refused: invalid_auth
        for key, value in {"SAFETYCATCH_SLACK_SECRET": "safetycatch/slack", "SAFETYCATCH_SLACK_CHANNEL": CHANNEL,
                           "SAFETYCATCH_SLACK_API_URL": slack.url}.items():
            monkeypatch.setenv(key, value)
        data, err = run_json(capsys, *SCAN)
        assert slack.posted() == []
    (finding,) = data["findings"]
    assert finding["outcome"] == "reported"
    assert data["errors"] == ["not notified: Slack chat_postMessage: invalid_auth"]
    assert err == ""
    assert main(["scan", "--fix", "--no-state", "--checks", "env-secrets"]) == 0  # Slack is down now
    table = capsys.readouterr()
    assert table.err.startswith("error: not notified: Slack chat_postMessage: URLError: <urlopen error")
    assert table.err.count("\n") == 1 and "reported" in table.out


def test_a_delivered_notification_is_notified(aws, mailer, capsys, monkeypatch):
    create_secret(aws)
    with LocalSlack(token=BOT_TOKEN) as slack:
        for key, value in {"SAFETYCATCH_SLACK_SECRET": "safetycatch/slack", "SAFETYCATCH_SLACK_CHANNEL": CHANNEL,
                           "SAFETYCATCH_SLACK_API_URL": slack.url}.items():
            monkeypatch.setenv(key, value)
        data, _ = run_json(capsys, *SCAN)
        assert len(slack.posted()) == 1
    assert [f["outcome"] for f in data["findings"]] == ["notified"] and data["errors"] == []


def test_a_note_slack_refused_is_sent_by_the_next_run(aws, mailer, capsys, monkeypatch):
    """With the state table, a notify-only note is posted at most once a day; one Slack refused is not "posted"."""
    from chalicelib.store.state import table_definition

    aws.client("dynamodb").create_table(**table_definition("safetycatch-truth"))
    monkeypatch.setenv("SAFETYCATCH_TABLE", "safetycatch-truth")
    create_secret(aws)
    outcomes = []
    for token in ("xoxb-some-other-workspace", BOT_TOKEN, BOT_TOKEN):
        with LocalSlack(token=token) as slack:
            for key, value in {"SAFETYCATCH_SLACK_SECRET": "safetycatch/slack", "SAFETYCATCH_SLACK_CHANNEL": CHANNEL,
                               "SAFETYCATCH_SLACK_API_URL": slack.url}.items():
                monkeypatch.setenv(key, value)
            data, _ = run_json(capsys, "scan", "--fix", "--checks", "env-secrets", "--format", "json")
            outcomes.append((data["findings"][0]["outcome"], len(slack.posted())))
    # refused: reported; then delivered; then already posted today (notified once, not posted twice)
    assert outcomes == [("reported", 0), ("notified", 1), ("notified", 0)]


def test_findings_carry_stable_ids_times_names_and_the_scan_its_scopes(aws, capsys):
    aws.rest_api(aws.function("api", timeout=30), path="api")
    aws.sqs_mapping(aws.function("worker"), "worker-queue")
    first, _ = run_json(capsys, "scan", "--format", "json")
    again, _ = run_json(capsys, "scan", "--format", "json")
    assert first["scan_id"] != again["scan_id"] and re.fullmatch(r"[0-9a-f]{32}", first["scan_id"])
    assert (first["account"], first["region"]) == ("123456789012", "us-east-1")
    assert [(s["account"], s["region"]) for s in first["scopes"]] == [("123456789012", "us-east-1")]
    ids = {f["policy"]: f["id"] for f in first["findings"]}
    assert ids == {f["policy"]: f["id"] for f in again["findings"]}  # stable across runs
    assert ids["apigw-timeout"] == "safetycatch/apigw-timeout/arn:aws:lambda:us-east-1:123456789012:function:api"
    assert ids["batch-partial-failure"].startswith(
        "safetycatch/batch-partial-failure/arn:aws:lambda:us-east-1:123456789012:function:worker/")  # + mapping
    for finding in first["findings"]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", finding["time"])
        assert finding["function_name"] == finding["function"].rsplit(":", 1)[-1]
        assert finding["fix"] is not None and "id" not in finding["fix"]  # nothing applied: nothing to undo
    fixed, _ = run_json(capsys, "scan", "--fix", "--no-state", "--format", "json")
    by_policy = {f["policy"]: f for f in fixed["findings"]}
    assert by_policy["apigw-timeout"]["outcome"] == "fixed" and re.fullmatch(
        r"[0-9a-f]{32}", by_policy["apigw-timeout"]["fix"]["id"])
    assert by_policy["batch-partial-failure"]["outcome"] == "pending-approval"
    assert "id" not in by_policy["batch-partial-failure"]["fix"]
    assert by_policy["apigw-timeout"]["id"] == ids["apigw-timeout"]


def test_the_header_names_the_accounts_actually_scanned(aws, capsys):
    member_account(MEMBER).function("member-fn")
    data, _ = run_json(capsys, "scan", "--accounts", MEMBER, "--format", "json")
    assert (data["account"], data["region"]) == (MEMBER, "us-east-1")
    assert [(s["account"], s["region"]) for s in data["scopes"]] == [(MEMBER, "us-east-1")]
    code, out, _ = run(capsys, "scan", "--accounts", MEMBER)
    assert code == 0 and out.startswith(f"safetycatch scan account {MEMBER} us-east-1: 1 function, 0 findings")


def test_contradictory_region_flags_are_refused(aws, capsys):
    err = one_line_error(capsys, "scan", "--region", "eu-west-1", "--regions", "us-east-1")
    assert "--region and --regions contradict each other" in err


def test_all_accounts_with_no_active_account_is_an_error(aws, capsys, monkeypatch):
    """moto's organization always lists its management account as ACTIVE; an organization whose every account is
    suspended is shown with a botocore Stubber on the real Organizations client (ListAccounts only)."""
    real_client = boto3.session.Session.client

    def client(self, service_name, *args, **kwargs):
        made = real_client(self, service_name, *args, **kwargs)
        if service_name == "organizations":
            stubber = Stubber(made)
            stubber.add_response("list_accounts", {"Accounts": [{
                "Id": "123456789012", "Arn": "arn:aws:organizations::123456789012:account/o-exampleorgid/123456789012",
                "Email": "ops@example.com", "Name": "ops", "Status": "SUSPENDED"}]})
            stubber.activate()
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
    err = one_line_error(capsys, "scan", "--all-accounts")
    assert "the organization lists no active account; nothing to scan" in err


def test_counts_are_pluralised(aws, capsys):
    aws.rest_api(aws.function("api", timeout=30), path="api")
    code, out, _ = run(capsys, "scan")
    assert code == 0 and "1 function, 1 finding (report only" in out
