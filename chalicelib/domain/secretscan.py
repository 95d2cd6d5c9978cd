"""Pure classifiers for environment variables that hold secrets. They return *why* a variable looks secret,
never any part of its value: callers can print the reason, the name and nothing else.

Three questions, answered separately so each can be tested on its own:

* :func:`is_reference` - the value points at a secret store (Secrets Manager / SSM ARN, ``{{resolve:...}}``,
  an SSM path, a Secrets Manager name in lower-case path form such as ``prod/db``): fine whatever the name;
* :func:`credential_shape` - the value looks like a credential whatever the name (AWS key id, Slack / GitHub
  token, PEM private key, JWT, credentials inside a URL or connection string, a long high-entropy string);
* :func:`secret_name` - the name says "secret" (PASSWORD, TOKEN, API_KEY...) and is not merely *about* one
  (``DB_PASSWORD_SECRET_ARN``, ``TOKEN_TTL``, ``AUTH_MODE``).

Example:
    >>> classify("DB_PASSWORD", "hunter2-prod")
    'name looks secret (PASSWORD) and the value is a literal'
    >>> classify("DB_PASSWORD", "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf") is None
    True
"""

from __future__ import annotations

import math
import re
from collections import Counter

# Value shapes that are credentials whatever the variable is called: (regex, what it is).
CREDENTIAL_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), what) for p, what in (
    (r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])", "an AWS access key id (AKIA/ASIA)"),
    (r"\bxox[abposr]-[A-Za-z0-9-]{10,}", "a Slack token (xox*)"),
    (r"\bxapp-\d-[A-Za-z0-9-]{10,}", "a Slack app token (xapp-)"),
    (r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}", "a Slack incoming-webhook URL"),
    (r"\bgh[pousr]_[A-Za-z0-9]{36,}", "a GitHub token (ghp_/gho_/ghs_...)"),
    (r"\bgithub_pat_[A-Za-z0-9_]{22,}", "a GitHub fine-grained token (github_pat_)"),
    (r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----", "a PEM private key"),
    (r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", "a JWT"),
    (r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}", "a Stripe live secret key"),
    (r"\bAIza[0-9A-Za-z_-]{35}", "a Google API key (AIza)"),
    (r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", "a URL with a password in it"),
    (r"(?i)(?:^|[;\s])(?:password|pwd)\s*=\s*[^;\s]", "a connection string with a password"),
))

_REFERENCE = re.compile(
    r"^(?:arn:aws[a-z-]*:(?:secretsmanager|ssm|kms):[a-z0-9-]*:\d{12}:\S+"  # Secrets Manager / SSM / KMS ARN
    r"|\{\{resolve:(?:secretsmanager|ssm|ssm-secure):[^}]+\}\}"          # CloudFormation dynamic reference
    r"|/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+"                             # an SSM parameter path
    r"|[a-z0-9][a-z0-9_.+=@-]*(?:/[a-z0-9_.+=@-]+)+)$"                    # a secret's name in path form
)

# Words in a name that make it secret. Long ones match inside run-together names (DBPASSWORD); short ones only
# as whole words (TOKEN, not TOKENIZER; AUTH, not AUTHOR).
_SECRET_SUBSTRINGS = ("PASSWORD", "PASSWD", "SECRET", "CREDENTIAL", "APIKEY", "PRIVATEKEY", "SIGNINGKEY")
_SECRET_WORDS = {"TOKEN", "AUTH", "PWD", "PASS", "PASSPHRASE"}
_SECRET_PAIRS = {("API", "KEY"), ("PRIVATE", "KEY"), ("SIGNING", "KEY"), ("ACCESS", "TOKEN")}
# A name ending in one of these is *about* a secret (where it is, how long it lives), not the secret itself.
_ABOUT_SUFFIXES = {
    "ARN", "NAME", "ID", "IDS", "PATH", "PARAM", "PARAMETER", "FILE", "URL", "URI", "ENDPOINT", "HOST", "TYPE",
    "MODE", "ENABLED", "ENABLE", "DISABLED", "TTL", "EXPIRY", "EXPIRATION", "EXPIRES", "TIMEOUT", "HEADER",
    "REGION", "LENGTH", "SIZE", "VERSION", "ALGORITHM", "ALG", "ISSUER", "AUDIENCE", "SCOPE", "SCOPES", "PROVIDER",
    "LOCATION", "KEY_ID", "POLICY", "ROTATION", "REFRESH_SECONDS", "SHA", "COMMIT", "HASH", "CHECKSUM", "DIGEST",
    "REVISION", "BUILD", "ETAG",
}
_TRIVIAL = re.compile(r"^(?:|true|false|yes|no|on|off|none|null|nil|enabled|disabled|\d{1,12}(?:\.\d+)?)$",
                      re.IGNORECASE)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_TOKENISH = re.compile(r"^[A-Za-z0-9+/=_-]+$")


def words(name: str) -> list[str]:
    """Upper-case words of a variable name: ``words("dbPassword_ARN") == ["DB", "PASSWORD", "ARN"]``."""
    return [w.upper() for w in _WORD.findall(name)]


def is_reference(value: str) -> bool:
    """True when the value names where a secret lives instead of holding it.

    Example:
        >>> is_reference("{{resolve:secretsmanager:prod/db:SecretString:password}}")
        True
        >>> is_reference("safetycatch/prod/slack"), is_reference("Hunter2/Prod")
        (True, False)
    """
    return bool(_REFERENCE.match(value.strip()))


def entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character (0 for the empty string)."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _relative_entropy(value: str, alphabet: int) -> float:
    return entropy(value) / math.log2(min(len(value), alphabet))


def high_entropy(value: str) -> bool:
    """A long random-looking token: hex of 32+ characters, or 24+ characters of a base64 / url-safe alphabet
    mixing upper case, lower case and digits, with high Shannon entropy (relative to the most its length allows)
    and no word structure (CamelCase identifiers split into long words, random tokens into short runs). UUIDs are
    ids, not secrets. Statistical: about one random 24-character token in ten thousand reads as words.

    Example:
        >>> high_entropy("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        True
        >>> high_entropy("orders-production-table-2024")
        False
    """
    value = value.strip()
    if _UUID.match(value) or not _TOKENISH.match(value):
        return False
    if _HEX.match(value):
        return len(value) >= 32 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value) \
            and _relative_entropy(value, 16) >= 0.65
    mixed = any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)
    if len(value) < 24 or not mixed or _relative_entropy(value, 64) < 0.7:
        return False
    runs = _WORD.findall(value)
    return sum(map(len, runs)) / len(runs) <= 4.0


def credential_shape(value: str, random_tokens: bool = True) -> str | None:
    """What credential the value looks like (``"a Slack token (xox*)"``), or None. ``random_tokens=False``
    leaves out the high-entropy rule (for names that say the value is an id, a hash, a version...).

    Example:
        >>> credential_shape("AKIA" + "Z" * 16)
        'an AWS access key id (AKIA/ASIA)'
    """
    for pattern, what in CREDENTIAL_SHAPES:
        if pattern.search(value):
            return what
    return "a long high-entropy string" if random_tokens and high_entropy(value) else None


def is_about_a_secret(name: str) -> bool:
    """The name ends in a word saying the value is *about* something (``_ARN``, ``_TTL``, ``_SHA``...).

    Example:
        >>> is_about_a_secret("DB_PASSWORD_SECRET_ARN"), is_about_a_secret("DB_PASSWORD")
        (True, False)
    """
    parts = words(name)
    return bool(parts) and (parts[-1] in _ABOUT_SUFFIXES or "_".join(parts[-2:]) in _ABOUT_SUFFIXES)


def secret_name(name: str) -> str | None:
    """The word that makes ``name`` look secret (``"PASSWORD"``), or None - also None when the name ends in a
    word saying it is *about* a secret (``SECRET_ARN``, ``TOKEN_TTL``).

    Example:
        >>> secret_name("STRIPE_API_KEY"), secret_name("DB_PASSWORD_SECRET_ARN"), secret_name("AUTHOR")
        ('API_KEY', None, None)
    """
    parts = words(name)
    if not parts or is_about_a_secret(name):
        return None
    for first, second in zip(parts, parts[1:], strict=False):
        if (first, second) in _SECRET_PAIRS:
            return f"{first}_{second}"
    for part in parts:
        if part in _SECRET_WORDS:
            return part
    joined = "".join(parts)
    return next((s for s in _SECRET_SUBSTRINGS if s in joined), None)


def classify(name: str, value: object) -> str | None:
    """Why the variable ``name=value`` holds a secret in plain text, or None. The reason never quotes the value.

    Example:
        >>> classify("SLACK_HOOK", "https://hooks.slack.com/services/T000/B000/abcdefghij0123456789ABCD")
        'value looks like a Slack incoming-webhook URL'
        >>> classify("AUTH_ENABLED", "true") is None
        True
    """
    if not isinstance(value, str) or is_reference(value):
        return None
    reason = None
    shape = credential_shape(value, random_tokens=not is_about_a_secret(name))
    word = secret_name(name)
    if shape:
        reason = f"value looks like {shape}"
    elif word and not _TRIVIAL.match(value.strip()) and not value.strip().startswith(("http://", "https://")):
        reason = f"name looks secret ({word}) and the value is a literal"
    if reason and value.strip() and value.strip() in reason:  # a password such as "PASSWORD" or "literal"
        return "the value looks like a secret"
    return reason
