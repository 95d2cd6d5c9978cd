"""Environment variables under a customer managed KMS key, as Lambda answers a caller without access to the key (a
documented component of the test world; moto always returns the variables).

AWS: "When you use a customer managed key, only users in your account with access to the KMS key can view or
manage environment variables on the function" (Lambda developer guide, "Securing Lambda environment variables").
GetFunction / GetFunctionConfiguration / ListFunctions then answer ``Environment`` with ``Error``
(``EnvironmentError``: ``ErrorCode``, ``Message``; botocore's lambda model, ``EnvironmentResponse``) and no
``Variables``. The error code and message below are Lambda's KMS access-denied wording (AWS re:Post knowledge
center "lambda-kmsaccessdeniedexception-errors"); the exact code on a read is inferred.

Who has access, here: a key whose policy allows ``kms:Decrypt`` (or ``kms:*``) to the account root or ``*`` lets
every caller of the account use it (IAM policies may then grant it, as AWS's default key policy does); a key whose
policy names only other principals denies the bot. That is all of key-policy evaluation this world models.
"""

from __future__ import annotations

import json
from typing import Any

ACCOUNT, REGION = "123456789012", "us-east-1"
DENIED = {"ErrorCode": "AccessDeniedException",
          "Message": "Lambda was unable to decrypt the environment variables because KMS access was denied. Please "
                     "check the function's AWS KMS key settings. KMS Exception: AccessDeniedException KMS Message: "
                     "The ciphertext refers to a customer master key that does not exist, does not exist in this "
                     "region, or you are not allowed to access."}


def key_policy(*principals: str) -> str:
    """A key policy letting ``principals`` use the key (and its administrators manage it)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "use", "Effect": "Allow", "Principal": {"AWS": list(principals)},
         "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"], "Resource": "*"}]})


def _account_may_use(policy_text: str) -> bool:
    policy = json.loads(policy_text or "{}")
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principal = statement.get("Principal", {})
        named = principal.get("AWS", []) if isinstance(principal, dict) else [principal]
        named = [named] if isinstance(named, str) else named
        if statement.get("Effect") == "Allow" and any(a in ("kms:Decrypt", "kms:*") for a in actions) and \
                any(p in ("*", f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT) for p in named):
            return True
    return False


def _deny(config: dict[str, Any]) -> None:
    from moto.kms.models import kms_backends

    key = str(config.get("KMSKeyArn") or "")
    if not key or not config.get("Environment"):
        return
    keys = kms_backends[ACCOUNT][REGION].keys
    found = keys.get(key.rsplit("/", 1)[-1])
    if found is not None and not _account_may_use(found.policy):
        config["Environment"] = {"Error": dict(DENIED)}


def install(*sessions: Any) -> None:
    """Answer the Lambda reads of ``sessions`` as AWS answers a caller the function's key does not admit."""
    def get_function(parsed: dict[str, Any], **_: Any) -> None:
        if isinstance(parsed.get("Configuration"), dict):
            _deny(parsed["Configuration"])

    def configuration(parsed: dict[str, Any], **_: Any) -> None:
        _deny(parsed)

    def list_functions(parsed: dict[str, Any], **_: Any) -> None:
        for config in parsed.get("Functions", []):
            _deny(config)

    for session in sessions:
        session.events.register("after-call.lambda.GetFunction", get_function)
        session.events.register("after-call.lambda.GetFunctionConfiguration", configuration)
        session.events.register("after-call.lambda.ListFunctions", list_functions)
