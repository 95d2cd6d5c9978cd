"""env-secrets (footgun 6): a secret in plain text in an environment variable.

Anyone with lambda:GetFunctionConfiguration reads environment variables, and they end up in the console,
CloudFormation templates, Terraform state and any log that dumps the environment. Flagged: a name that looks
secret (PASSWORD, SECRET, TOKEN, API_KEY, PRIVATE_KEY, CREDENTIAL, AUTH...) with a literal value, or a value
shaped like a credential whatever its name (AWS key ids, Slack and GitHub tokens, PEM private keys, JWTs,
passwords inside URLs, long high-entropy strings). References are fine: Secrets Manager / SSM ARNs and paths,
``{{resolve:...}}``. Read the secret at cold start instead (Powertools Parameters or the Parameters and Secrets
extension cache it). The value itself is never printed, logged, stored or sent: findings carry variable names
and the kind of secret only. CloudTrail logs ``environment`` as ``{}``, so the function is always re-read.
"""

from __future__ import annotations

from chalicelib.checks.base import Check, Param, Params
from chalicelib.core.model import AccountFacts, Finding, FunctionSnapshot
from chalicelib.domain.secretscan import classify


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """One finding per function listing each variable that holds a secret, by name, with the reason.

    Example:
        >>> from chalicelib.core.model import FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("mailer", "123456789012", "us-east-1"),
        ...                       env={"SMTP_PASSWORD": "correct-horse", "LOG_LEVEL": "INFO"})
        >>> evaluate(fn, {"ignore": []}, AccountFacts())[0].evidence
        {'variables': {'SMTP_PASSWORD': 'name looks secret (PASSWORD) and the value is a literal'}}
    """
    if snapshot.env_error:
        return [unreadable(snapshot)]
    ignored = {name.upper() for name in params["ignore"]}
    flagged = {name: reason for name, value in sorted(snapshot.env.items())
               if name.upper() not in ignored and (reason := classify(name, value))}
    if not flagged:
        return []
    listed = "; ".join(f"{name}: {reason}" for name, reason in flagged.items())
    message = (
        f"{len(flagged)} environment variable{'s hold' if len(flagged) > 1 else ' holds'} a secret in plain text, "
        f"readable by anyone with lambda:GetFunctionConfiguration ({listed}). Move "
        f"{'them' if len(flagged) > 1 else 'it'} to Secrets Manager or SSM Parameter Store, keep only the "
        f"secret's name or ARN in the environment, read it once per cold start - and rotate it: it has been exposed."
    )
    return [Finding(CHECK.id, snapshot.arn, "", message, None, {"variables": flagged})]


CANNOT_READ = "cannot read: encrypted with a customer key"


def unreadable(snapshot: FunctionSnapshot) -> Finding:
    """The environment came back as ``Environment.Error``: said, never a silent pass.

    Example:
        >>> from chalicelib.core.model import FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("payments", "123456789012", "us-east-1"), env_error="AccessDenied: x",
        ...                       kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/1234abcd")
        >>> unreadable(fn).message.split(" (")[0]
        'cannot read: encrypted with a customer key'
    """
    key = snapshot.kms_key_arn or "a key this caller cannot use"
    what = CANNOT_READ if snapshot.kms_key_arn else "cannot read: the environment was not returned"
    message = (f"{what} ({key}; GetFunction answered Environment.Error {snapshot.env_error.split(':')[0]}): the "
               f"variables were not checked for secrets. Grant the bot kms:Decrypt on the key (key policy or grant) "
               f"or review them with someone who can.")
    return Finding(CHECK.id, snapshot.arn, "", message, None,
                   {"unreadable": snapshot.env_error.split(":")[0], "kms_key_arn": snapshot.kms_key_arn})


CHECK = Check(
    id="env-secrets",
    footgun="6",
    title="Secrets in environment variables",
    doc=__doc__ or "",
    default_mode="notify",
    default_severity="high",
    evaluate=evaluate,
    params=(Param("ignore", list, [], "Variable names never flagged (known non-secrets that look random)."),),
    in_scope=lambda snapshot, params: bool(snapshot.env) or bool(snapshot.env_error),
    triggers=frozenset(("UpdateFunctionConfiguration:environment", "UpdateFunctionConfiguration:kMSKeyArn")),
)
