"""Slack setup in one pass (issue 23.4): the manifest advertises exactly the commands the route accepts (a route
test sends each one, and the old advertised ones are refused), the channel lives in one place (the stack's
SlackChannel parameter feeds every function and the dead-letter notifier), approvers come from ``make deploy
APPROVERS=...``, and ``make deploy`` passes both and ends by writing the manifest with the stack's URL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from chalicelib.people.decisions import FUNCTION_COMMANDS
from safetycatch.build import steps as build
from tests.world.slack_helpers import APPROVER, configure_slack, deployed_bot, policies_dir

ROOT = Path(__file__).resolve().parents[2]


def _advertised() -> list[str]:
    manifest = yaml.safe_load(build.slack_manifest("https://abc123.execute-api.eu-west-1.amazonaws.com/api"))
    (command,) = manifest["features"]["slash_commands"]
    return command["usage_hint"].split(" FUNCTION")[0].split(" | ")


def test_the_manifest_file_is_generated_and_advertises_the_route_commands():
    assert build.SLACK_MANIFEST.read_text() == build.render_slack_manifest(), "run `python -m safetycatch.build iam`"
    assert _advertised() == list(FUNCTION_COMMANDS)


@pytest.fixture
def bot(aws, make_runtime, local_slack, monkeypatch, tmp_path):
    configure_slack(aws, monkeypatch, local_slack)
    aws.function("orders-worker")
    return deployed_bot(make_runtime, local_slack,
                        policies_dir(tmp_path))


def test_every_advertised_command_is_accepted_and_the_old_ones_are_not(bot):
    for command in _advertised():
        text = bot.command(APPROVER, f"{command} orders-worker").json_body["text"]
        assert "Usage" not in text, command
        if command == "kill":
            bot.command(APPROVER, "restore orders-worker")
    for old in ("pending", "mode", "help"):
        assert "Usage" in bot.command(APPROVER, f"{old} orders-worker").json_body["text"], old


def test_approvers_from_make_deploy_join_the_settings(monkeypatch):
    monkeypatch.setenv("APPROVERS", "U0123ABCD,S0SREGRP1")
    assert build.approvers_from_env({"approvers": ["U0EXISTING"], "approver_groups": []}) == {
        "approvers": ["U0EXISTING", "U0123ABCD"], "approver_groups": ["S0SREGRP1"]}
    monkeypatch.setenv("APPROVERS", "alice")
    with pytest.raises(build.BuildError, match="'alice' is not a Slack user"):
        build.approvers_from_env({})
    monkeypatch.setenv("APPROVERS", "alice")
    assert build.main(["compile"]) == 2  # one line, exit 2, nothing written


def test_the_channel_is_one_stack_parameter_for_every_function():
    template = {"Parameters": {"SlackChannel": {"Type": "String", "Default": ""}}, "Resources": {
        "Handler": {"Type": "AWS::Serverless::Function", "Properties": {"Environment": {"Variables": {
            "SAFETYCATCH_SLACK_SECRET": {"Ref": "SlackSecret"}}}}},
        "Other": {"Type": "AWS::SQS::Queue", "Properties": {}}}}
    build._reference_slack_channel(template, "dev")
    variables = template["Resources"]["Handler"]["Properties"]["Environment"]["Variables"]
    assert variables["SAFETYCATCH_SLACK_CHANNEL"] == {"Ref": "SlackChannel"}
    assert "Environment" not in template["Resources"]["Other"]["Properties"]


def test_make_deploy_passes_channel_and_approvers_and_writes_the_manifest():
    makefile = (ROOT / "Makefile").read_text()
    deploy = makefile.split("\ndeploy:", 1)[1].split("\n\n", 1)[0]
    package = makefile.split("\npackage:", 1)[1].split("\n\n", 1)[0]
    assert 'APPROVERS="$(APPROVERS)"' in package
    assert "SlackChannel=$(SLACK_CHANNEL)" in deploy
    assert re.search(r"safetycatch\.build slack-manifest \"?\$\$url", deploy)
    assert "build/slack-app-manifest.yaml" in deploy
    assert "selftest --stage $(STAGE)" in deploy
