"""Every fix ``doctor`` prints runs as printed (issue 23.6): each piece of a deployed bot is taken away as in
tests/cli/test_doctor.py, the fix doctor prints for it is run word for word against moto, and the line turns ok.

``aws SERVICE OPERATION --option value ...`` is run as the AWS CLI runs it: the operation and option names are
the API's in kebab case, lists and structures are JSON, booleans are flags (``--overwrite``), ``--region`` picks
the region (botocore's service model maps each, as the CLI's does). ``VAR=value safetycatch ARGS`` runs the CLI
with that environment. Two fixes cannot run here and the test says which: a deleted or out-of-date rule of the
bot needs the bot deployed again (``make deploy``), and a revoked Slack token needs a new one from Slack."""

from __future__ import annotations

import json
import os
import shlex
from typing import Any

import boto3
import pytest
from botocore import xform_name

from safetycatch import doctor
from safetycatch.local.sandbox import patched_env
from safetycatch.main import main
from tests.cli.test_doctor import REMOVALS, _doctor, deployed  # noqa: F401 - deployed is the fixture

NEEDS_A_DEPLOY = {"rule:on_config_change", "rule:on_dependency_change", "rule:on_runaway_alarm"}  # gone, or out of date
NEEDS_A_HUMAN = {"slack-auth"}  # a token Slack revoked: only Slack can issue the next one


def _options(words: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    while words:
        word = words.pop(0)
        assert word.startswith("--"), f"not an option: {word}"
        if words and not words[0].startswith("--"):
            options[word[2:]] = words.pop(0)
        elif word.startswith("--no-"):
            options[word[5:]] = False
        else:
            options[word[2:]] = True
    return options


def _value(text: Any, shape: Any) -> Any:
    if shape.type_name in ("list", "structure", "map"):
        return json.loads(text)
    if shape.type_name in ("integer", "long"):
        return int(text)
    return text


def run_printed(fix: str) -> None:
    """Run one printed fix (the first command when it offers a local and a deployed way)."""
    words = shlex.split(fix.split(" (local runs)")[0])
    env = {}
    while "=" in words[0]:
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    if words[0] == "safetycatch":
        with patched_env(**env):
            assert main(words[1:]) == 0, fix
        return
    assert words[0] == "aws" and not env, fix
    service, operation, options = words[1], words[2], _options(words[3:])
    client = boto3.client(service, region_name=options.pop("region", None) or os.environ["AWS_DEFAULT_REGION"])
    method = operation.replace("-", "_")
    model = client.meta.service_model.operation_model(client.meta.method_to_api_mapping[method])
    members = {xform_name(name).replace("_", "-"): (name, shape) for name, shape in model.input_shape.members.items()}
    unknown = set(options) - set(members)
    assert not unknown, f"{fix}: the AWS CLI has no option --{', --'.join(sorted(unknown))}"
    getattr(client, method)(**{members[o][0]: _value(v, members[o][1]) for o, v in options.items()})


@pytest.mark.parametrize("piece", sorted(set(REMOVALS) - NEEDS_A_DEPLOY - NEEDS_A_HUMAN))
def test_each_printed_fix_runs_as_printed_and_turns_its_line_ok(deployed, capsys, piece):  # noqa: F811
    REMOVALS[piece](deployed)
    _, before = _doctor(capsys)
    assert before[piece]["status"] == "missing" and before[piece]["fix"]
    run_printed(before[piece]["fix"])
    capsys.readouterr()  # what the fix printed (safetycatch init says what it created)
    _, after = _doctor(capsys)
    assert after[piece]["status"] == "ok", (before[piece]["fix"], after[piece])


def test_a_trail_that_logs_only_reads_is_fixed_as_printed(deployed, capsys):  # noqa: F811
    deployed.us.client("cloudtrail").put_event_selectors(TrailName=deployed.trail, EventSelectors=[
        {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}])
    _, before = _doctor(capsys)
    assert "put-event-selectors" in before["cloudtrail"]["fix"]
    run_printed(before["cloudtrail"]["fix"])
    assert _doctor(capsys)[1]["cloudtrail"]["status"] == "ok"


@pytest.mark.parametrize("piece", sorted(NEEDS_A_DEPLOY | NEEDS_A_HUMAN))
def test_the_fixes_that_cannot_run_here_say_what_to_do(deployed, capsys, piece):  # noqa: F811
    REMOVALS[piece](deployed)
    fix = _doctor(capsys)[1][piece]["fix"]
    if piece in NEEDS_A_DEPLOY:
        assert fix == doctor.DEPLOY_FIX.format(stage="dev")
    else:
        assert "bot token" in fix and "reinstall the app" in fix
