"""Encrypted environments are said, not skipped: a function whose variables are under a customer managed key the bot
cannot use is reported "cannot read: encrypted with a customer key" (event path and sweep), never passed."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.bot.handlers import handle_event
from safetycatch import doctor, doctor_events
from safetycatch.local.cloudtrail import api_call
from tests.world import kms_world

ACCOUNT, REGION = "123456789012", "us-east-1"
SECRET_ENV = {"Variables": {"DB_PASSWORD": "correct-horse-battery-staple", "LOG_LEVEL": "INFO"}}


@pytest.fixture
def kms_denies(runtime):
    kms_world.install(runtime.session, runtime.clients().session)


def _key(aws, *principals: str) -> str:
    return str(aws.client("kms").create_key(Policy=kms_world.key_policy(*principals))["KeyMetadata"]["Arn"])


def _update_event(name: str, key: str) -> dict:
    """UpdateFunctionConfiguration as CloudTrail logs it: ``environment`` redacted to {}, the key as kMSKeyArn."""
    return api_call("UpdateFunctionConfiguration20150331v2", {"functionName": name, "environment": {},
                                                              "kMSKeyArn": key},
                    {"functionName": name, "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
                     "environment": {}, "kMSKeyArn": key, "lastUpdateStatus": "InProgress"})


def test_a_customer_key_the_bot_cannot_use_is_reported_not_passed(aws, runtime, kms_denies):
    key = _key(aws, f"arn:aws:iam::{ACCOUNT}:role/payments-admin")
    arn = aws.function("payments", Environment=SECRET_ENV, KMSKeyArn=key)
    report = handle_event(_update_event("payments", key), runtime=runtime)
    assert report["skipped"] is None
    (finding,) = [f for f in report["findings"] if f["policy"] == "env-secrets"]
    assert finding["function"] == arn
    assert finding["message"].startswith(f"cannot read: encrypted with a customer key ({key}; GetFunction answered "
                                         "Environment.Error AccessDeniedException)")
    assert "correct-horse" not in str(report), "no value is ever shown"


def test_a_key_the_account_may_use_is_read_and_the_secret_found(aws, runtime, kms_denies):
    key = _key(aws, f"arn:aws:iam::{ACCOUNT}:root")
    aws.function("payments", Environment=SECRET_ENV, KMSKeyArn=key)
    report = handle_event(_update_event("payments", key), runtime=runtime)
    (finding,) = [f for f in report["findings"] if f["policy"] == "env-secrets"]
    assert "DB_PASSWORD" in finding["message"] and "cannot read" not in finding["message"]


def test_the_sweep_says_it_too(aws, runtime, kms_denies):
    key = _key(aws, f"arn:aws:iam::{ACCOUNT}:role/payments-admin")
    aws.function("payments", Environment=SECRET_ENV, KMSKeyArn=key)
    aws.function("plain")
    report = runtime.engine(ACCOUNT, REGION).sweep(act=False)
    unread = [d.finding for d in report.decisions if d.finding.policy == "env-secrets"]
    assert [f.function_arn.rsplit(":", 1)[-1] for f in unread] == ["payments"]
    assert unread[0].message.startswith("cannot read: encrypted with a customer key")


def test_doctor_counts_the_environments_it_cannot_read(aws):
    key = _key(aws, f"arn:aws:iam::{ACCOUNT}:role/payments-admin")
    aws.function("payments", Environment=SECRET_ENV, KMSKeyArn=key)
    aws.function("plain", Environment={"Variables": {"LOG_LEVEL": "INFO"}})
    session = boto3.session.Session(region_name=REGION)
    checker = doctor.Checker(session, doctor.Target.for_stage("dev"))
    assert doctor_events.encrypted_environments(checker).status == "ok", "moto alone returns every variable"
    kms_world.install(session)  # clients made from now on see what AWS answers
    item = doctor_events.encrypted_environments(doctor.Checker(session, doctor.Target.for_stage("dev")))
    assert (item.status, item.detail) == ("cannot-check", "1 of 2 functions' environments cannot be read: "
                                                          "encrypted with a customer key (payments)")
    assert "kms:Decrypt" in item.fix
