"""An account with a function for every footgun (plus an exempt one and a never_kill one), and a ledger of every
write the bot makes and every prior value it stores - what the hostile-input tests check their invariants on.

Each recorded fixture event names ``example-fn``; the fuzz swaps that name for any function of the estate, so a
mutation that keeps a valid target reaches the engine, finds a footgun and (in enforce mode) writes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chalicelib.act.gateway import Gateway
from chalicelib.core.model import FunctionRef
from chalicelib.domain import alarms
from chalicelib.store.state import StateStore
from safetycatch.local.sandbox import SandboxAccount

ACCOUNT, FOREIGN, REGION = "123456789012", "210987654321", "us-east-1"
EXEMPT, NEVER_KILL = "fn-exempt", "fn-never-kill"
POLICIES = Path(__file__).resolve().parents[2] / "policies"


def fuzz_policies(target: Path) -> Path:
    """The repo's policies with never_kill set, the caps and the fight limit out of the way (the fuzz applies
    the same fix many times on purpose) and a package-size threshold the estate's small layer crosses."""
    shutil.copytree(POLICIES, target, dirs_exist_ok=True)
    settings = yaml.safe_load((target / "settings.yaml").read_text())
    settings.update(never_kill=[NEVER_KILL], max_changes_per_hour=10000, max_changes_per_function_per_hour=10000,
                    max_changes_per_policy_per_hour=10000, max_reapply=100)
    (target / "settings.yaml").write_text(yaml.safe_dump(settings))
    (target / "package-size.yaml").write_text(yaml.safe_dump({"mode": "notify", "params": {"max_total_mb": 1}}))
    return target


def build_estate(aws: SandboxAccount) -> dict[str, str]:
    """Functions named after what is wrong with them (the twelve footguns and the kill-switch); name -> ARN."""
    lam = aws.client("lambda")
    arns = {
        "orders-api": aws.function("orders-api", timeout=30),                                     # 2 apigw-timeout
        "orders-worker": aws.function("orders-worker", timeout=60),                               # 3 batch
        "payments": aws.function("payments", tags={"critical": "true"}),                         # 9 reserved
        "ml-scorer": aws.function("ml-scorer", Layers=[aws.layer("pandas", 1_200_000)]),         # 5 package size
        "legacy-mailer": aws.function("legacy-mailer", Environment={"Variables": {               # 6 env secrets
            "SMTP_PASSWORD": "fuzz-only-not-a-real-password"}}),
        "signup-api": aws.function("signup-api", memory=128),                                     # 7 cold start
        "quotes-api": aws.function("quotes-api", memory=1024),                                    # 8 provisioned
        "pdf-render": aws.function("pdf-render", memory=128),                                     # 10 memory-cpu
        "legacy-orders": aws.function("legacy-orders", timeout=20),                               # 11 sync errors
        "thumbnails": aws.function("thumbnails", timeout=20),                                     # 12 /tmp
        "looping": aws.function("looping", tags={"safetycatch:kill-switch": "true"}),            # kill-switch
        EXEMPT: aws.function(EXEMPT, timeout=30, tags={"safetycatch:exempt": "true", "critical": "true",
                                                       "safetycatch:kill-switch": "true"}),
        NEVER_KILL: aws.function(NEVER_KILL),
    }
    aws.rest_api(arns["orders-api"], path="orders")
    aws.rest_api(arns[EXEMPT], path="exempt")
    aws.sqs_mapping(arns["orders-worker"], "orders-queue", batch_size=10)
    aws.concurrency_history("payments", peak=42)
    aws.http_api(arns["signup-api"], route="POST /signup")
    lam.create_alias(FunctionName="quotes-api", Name="live",
                     FunctionVersion=lam.publish_version(FunctionName="quotes-api")["Version"])
    aws.metric_history("quotes-api", "ProvisionedConcurrencyUtilization", 0.08, qualifier="live")
    aws.metric_history("pdf-render", "Duration", 2400, unit="Milliseconds")
    aws.metric_history("pdf-render", "Invocations", 40, unit="Count")
    aws.custom_rest_api(arns["legacy-orders"], path="legacy-orders")
    aws.log_lines("thumbnails", ["START", "[ERROR] OSError: [Errno 28] No space left on device", "END"])
    arns.update(_infrastructure(aws))
    return arns


def _infrastructure(aws: SandboxAccount) -> dict[str, str]:
    """Footguns 1 and 4: a VPC function without egress, a function writing to the bucket that triggers it."""
    network = aws.vpc("igw")
    writes = {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::fuzz-uploads/*"}]}
    arns = {"geo-lookup": aws.function("geo-lookup", VpcConfig={"SubnetIds": network["subnets"],
                                                               "SecurityGroupIds": []}),
            "uploads-processor": str(aws.client("lambda").create_function(
                FunctionName="uploads-processor", Runtime="python3.12", Handler="app.handler",
                Code={"ZipFile": aws._zip},
                Role=aws.execution_role("uploads-processor-role", {"write": writes}))["FunctionArn"])}
    aws.bucket_trigger("fuzz-uploads", arns["uploads-processor"])
    return arns


@dataclass
class Ledger:
    """Every gateway write (``("write", operation, params, dry_run, account)``) and every stored prior
    (``("fix", function ARN)``), in order, for one example."""

    entries: list[tuple[Any, ...]] = field(default_factory=list)

    def install(self, monkeypatch: Any) -> None:
        ledger = self
        write, store_fix = Gateway._write, StateStore.store_fix

        def recorded_write(gateway: Gateway, operation: str, **params: Any) -> dict[str, Any]:
            account = gateway.clients._clients.get("_account") or ACCOUNT  # set for a member account
            ledger.entries.append(("write", operation, params, gateway.dry_run, account))
            return write(gateway, operation, **params)

        def recorded_fix(store: StateStore, function_arn: str, policy: str, spec: dict[str, Any], **attrs: Any) -> str:
            ledger.entries.append(("fix", function_arn))
            return store_fix(store, function_arn, policy, spec, **attrs)

        monkeypatch.setattr(Gateway, "_write", recorded_write)
        monkeypatch.setattr(StateStore, "store_fix", recorded_fix)

    def writes(self) -> list[tuple[Any, ...]]:
        return [e for e in self.entries if e[0] == "write"]


def write_target(aws: SandboxAccount, operation: str, params: dict[str, Any], account: str) -> FunctionRef | None:
    """The function a gateway write changes (its mapping's or its alarm's function for those writes)."""
    if "FunctionName" in params:
        return FunctionRef.parse(params["FunctionName"], account, REGION)
    if "UUID" in params:
        arn = aws.client("lambda").get_event_source_mapping(UUID=params["UUID"])["FunctionArn"]
        return FunctionRef.parse(arn, account, REGION)
    name = params.get("AlarmName") or (params.get("AlarmNames") or [""])[0]
    function = alarms.function_of_alarm(name)
    return FunctionRef(function, account, REGION) if function else None


@dataclass
class Baseline:
    """What the estate looked like before the fuzz, to put back after an example that changed it."""

    configs: dict[str, tuple[int, int]]
    mappings: dict[str, list[str]]

    @classmethod
    def read(cls, aws: SandboxAccount, arns: dict[str, str]) -> Baseline:
        lam = aws.client("lambda")
        configs = {}
        for name in arns:
            config = lam.get_function(FunctionName=name)["Configuration"]
            configs[name] = (config["Timeout"], config["MemorySize"])
        mappings = {m["UUID"]: list(m.get("FunctionResponseTypes") or [])
                    for m in lam.list_event_source_mappings()["EventSourceMappings"]}
        return cls(configs, mappings)

    def restore(self, aws: SandboxAccount, touched: set[str]) -> None:
        lam, cloudwatch = aws.client("lambda"), aws.client("cloudwatch")
        for name in touched & set(self.configs):
            timeout, memory = self.configs[name]
            lam.update_function_configuration(FunctionName=name, Timeout=timeout, MemorySize=memory)
            lam.delete_function_concurrency(FunctionName=name)
        for uuid, types in self.mappings.items():
            lam.update_event_source_mapping(UUID=uuid, FunctionResponseTypes=types, Enabled=True)
        cloudwatch.delete_alarms(AlarmNames=[alarms.alarm_name(name) for name in touched])
