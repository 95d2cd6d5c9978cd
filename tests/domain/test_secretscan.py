"""The secret classifiers are pure: examples for each rule, and properties over generated values."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.secretscan import classify, credential_shape, high_entropy, is_reference, secret_name

ALNUM = string.ascii_letters + string.digits
SECRET_NAMES = ["DB_PASSWORD", "dbPassword", "PASSWD", "CLIENT_SECRET", "GITHUB_TOKEN", "STRIPE_API_KEY", "APIKEY",
                "JWT_PRIVATE_KEY", "SERVICE_CREDENTIALS", "BASIC_AUTH", "MYSQLPASSWORD", "ACCESS_TOKEN"]
ANY_NAMES = st.one_of(st.sampled_from(SECRET_NAMES + ["LOG_LEVEL", "TABLE", "X", "CONFIG"]),
                      st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True))


def _token(seed: int, length: int, alphabet: str = ALNUM) -> str:
    """A pseudo-random token that mixes upper case, lower case and digits (as real API keys do)."""
    rng = random.Random(seed)
    body = [rng.choice(alphabet) for _ in range(length - 3)]
    return "".join(body + [rng.choice(string.ascii_uppercase), rng.choice(string.ascii_lowercase),
                           rng.choice(string.digits)])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("name, value, reason", [
    ("DB_PASSWORD", "hunter2-prod", "name looks secret (PASSWORD)"),
    ("dbPassword", "s3cr3t!", "name looks secret (PASSWORD)"),
    ("DB_PASSWORD", "Hunter2/Prod", "name looks secret (PASSWORD)"),  # a slash alone does not make a secret name
    ("STRIPE_API_KEY", "live-key-for-billing", "name looks secret (API_KEY)"),
    ("SLACK_TOKEN", "not-a-real-format", "name looks secret (TOKEN)"),
    ("ANYTHING", "AKIAIOSFODNN7EXAMPLE", "AWS access key id"),
    ("ANYTHING", "ASIAZUN7YS6TXLVI2JKL", "AWS access key id"),
    ("NOTIFY", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "Slack token"),
    ("HOOK", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "Slack incoming-webhook"),
    ("GH", "ghp_" + "a1B2" * 9, "GitHub token"),
    ("GH", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "GitHub fine-grained"),
    ("KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----", "PEM private key"),
    ("KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn...", "PEM private key"),
    ("SESSION", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "JWT"),
    ("DATABASE_URL", "postgres://app:Sup3rSecret@db.internal:5432/orders", "URL with a password"),
    ("REDIS_URL", "redis://:Sup3rSecret@cache.internal:6379/0", "URL with a password"),
    ("DB", "Server=db;Database=orders;User Id=app;Password=Sup3rSecret;", "connection string"),
    ("DSN", "host=db user=app password=Sup3rSecret dbname=orders", "connection string"),
    ("UPSTREAM", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "high-entropy"),
    ("UPSTREAM", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "high-entropy"),
])
def test_flagged(name, value, reason):
    found = classify(name, value)
    assert found is not None and reason in found
    assert value not in found


@pytest.mark.parametrize("name, value", [
    ("DB_PASSWORD", "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"),
    ("DB_PASSWORD", "{{resolve:secretsmanager:prod/db:SecretString:password}}"),
    ("API_KEY", "{{resolve:ssm-secure:/prod/api-key:3}}"),
    ("API_KEY", "arn:aws:ssm:us-east-1:123456789012:parameter/prod/api-key"),
    ("API_KEY", "/prod/payments/api-key"),
    ("DB_PASSWORD_SECRET_ARN", "prod/db"),  # a name *about* a secret, with a short literal
    ("SLACK_SECRET_NAME", "prod/slack"),
    ("SAFETYCATCH_SLACK_SECRET", "safetycatch/dev/slack"),  # the bot's own setting: a secret's name, not a secret
    ("TOKEN_TTL", "3600"),
    ("AUTH_MODE", "iam"),
    ("AUTH_ENABLED", "true"),
    ("PASSWORD_MIN_LENGTH", "12"),
    ("AUTH_URL", "https://auth.example.com/oauth2/token"),
    ("AUTHOR", "Ada Lovelace"),
    ("TOKENIZER_MODEL", "bert-base-uncased"),
    ("BYPASS_CACHE", "sometimes"),
    ("LOG_LEVEL", "INFO"),
    ("TABLE_NAME", "orders-production-table-2024"),
    ("KMS_KEY_ID", "1234abcd-12ab-34cd-56ef-1234567890ab"),
    ("REQUEST_ID_HEADER", "X-Amzn-Trace-Id"),
    ("GIT_SHA", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"),  # a commit, not a key
    ("COGNITO_CLIENT_ID", "4a5b6c7d8e9f0g1h2i3j4k5l6m"),
    ("STACK_NAME", "MyCompanyOrdersServiceProd01"),
    ("BUCKET", "ApiGatewayRestApiProd2024Stage"),
    ("POWERTOOLS_SERVICE_NAME", "orders"),
    ("DB_PASSWORD", ""),
])
def test_not_flagged(name, value):
    assert classify(name, value) is None


def test_non_string_values_are_ignored():
    assert classify("DB_PASSWORD", None) is None and classify("DB_PASSWORD", 42) is None


@given(prefix=st.sampled_from(["AKIA", "ASIA"]), body=st.text(string.ascii_uppercase + string.digits, min_size=16,
                                                               max_size=16), name=ANY_NAMES)
def test_aws_key_ids_are_credentials_whatever_the_name(prefix, body, name):
    assert "AWS access key id" in classify(name, prefix + body)


@given(kind=st.sampled_from("bpoa"), a=st.integers(10**9, 10**13), b=st.integers(10**9, 10**13),
       seed=st.integers(), name=ANY_NAMES)
def test_slack_tokens(kind, a, b, seed, name):
    assert "Slack token" in classify(name, f"xox{kind}-{a}-{b}-{_token(seed, 24)}")


@given(kind=st.sampled_from(["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]), seed=st.integers(), name=ANY_NAMES)
def test_github_tokens(kind, seed, name):
    assert "GitHub" in classify(name, kind + _token(seed, 36))


@given(seed=st.integers(), length=st.integers(22, 82), name=ANY_NAMES)
def test_github_fine_grained_tokens(seed, length, name):
    assert "GitHub" in classify(name, "github_pat_" + _token(seed, length, ALNUM + "_"))


@given(kind=st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]), body=st.binary(min_size=32, max_size=600),
       name=ANY_NAMES)
def test_pem_private_keys(kind, body, name):
    pem = f"-----BEGIN {kind}PRIVATE KEY-----\n{base64.b64encode(body).decode()}\n-----END {kind}PRIVATE KEY-----\n"
    assert classify(name, pem) == "value looks like a PEM private key"


@given(claims=st.dictionaries(st.sampled_from(["sub", "iss", "aud", "exp", "scope", "name"]),
                              st.one_of(st.text(max_size=20), st.integers()), min_size=1),
       signature=st.binary(min_size=16, max_size=64), alg=st.sampled_from(["HS256", "RS256", "ES256"]),
       name=ANY_NAMES)
def test_jwts(claims, signature, alg, name):
    header = _b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    token = f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(signature)}"
    assert classify(name, token) == "value looks like a JWT"


# The high-entropy rule is statistical (about 1 in 10^4 random 24-character tokens reads as words), so these two
# properties run on a fixed set of examples: deterministic, and still a few hundred different tokens.
@settings(derandomize=True, max_examples=300)
@given(seed=st.integers(), length=st.integers(24, 64), name=st.sampled_from(SECRET_NAMES + ["UPSTREAM", "CONFIG"]))
def test_long_random_tokens_are_high_entropy(seed, length, name):
    assert high_entropy(_token(seed, length))
    assert classify(name, _token(seed, length)) is not None


@settings(derandomize=True, max_examples=300)
@given(seed=st.integers(), length=st.integers(32, 128))
def test_long_random_hex_is_high_entropy(seed, length):
    rng = random.Random(seed)
    value = "".join(rng.choice("0123456789abcdef") for _ in range(length - 2)) + "a1"
    assert high_entropy(value)


@given(value=st.uuids().map(str))
def test_uuids_are_ids_not_secrets(value):
    assert not high_entropy(value)
    assert credential_shape(value) is None


@given(region=st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"]),
       account=st.from_regex(r"\d{12}", fullmatch=True), path=st.from_regex(r"[a-z0-9/_-]{1,40}", fullmatch=True),
       kind=st.integers(0, 3), name=st.sampled_from(SECRET_NAMES))
def test_references_are_fine_whatever_the_name(region, account, path, kind, name):
    value = [f"arn:aws:secretsmanager:{region}:{account}:secret:{path}-AbC123",
             f"arn:aws:ssm:{region}:{account}:parameter/{path}",
             f"{{{{resolve:secretsmanager:{path}:SecretString:password}}}}",
             f"{{{{resolve:ssm:/{path}}}}}"][kind]
    assert is_reference(value)
    assert classify(name, value) is None


@given(value=st.one_of(st.sampled_from(["true", "False", "yes", "off", "none", "", "  "]),
                       st.integers(0, 10**9).map(str)), name=st.sampled_from(SECRET_NAMES))
def test_flags_and_numbers_under_secret_names_are_not_secrets(value, name):
    assert classify(name, value) is None


@given(word=st.sampled_from(["PASSWORD", "SECRET", "TOKEN", "API_KEY", "AUTH"]),
       suffix=st.sampled_from(["ARN", "NAME", "ID", "PATH", "PARAM", "TTL", "URL", "MODE", "ENABLED"]),
       prefix=st.sampled_from(["", "DB_", "SLACK_", "APP_"]))
def test_names_about_a_secret_are_not_secret_names(word, suffix, prefix):
    assert secret_name(f"{prefix}{word}_{suffix}") is None


@settings(max_examples=300)
@given(name=ANY_NAMES, value=st.text(min_size=6, max_size=200))
def test_the_reason_never_quotes_the_value(name, value):
    reason = classify(name, value)
    assert reason is None or value not in reason


@pytest.mark.parametrize("name, value", [("DB_PASSWORD", "PASSWORD"), ("API_KEY", "literal"), ("TOKEN", "e")])
def test_a_value_that_is_a_word_of_the_reason_is_not_echoed(name, value):
    reason = classify(name, value)
    assert reason == "the value looks like a secret"
