"""Build steps behind ``make package``: compile the policies, derive IAM, package, slim, check the budget.

``python -m cli.build compile [STAGE]`` validate policies/ and write chalicelib/compiled_policies.json (with
                                        STAGE: the bot's exact identities, as ``package`` does)
``python -m cli.build iam``             write .chalice/policy-<stage>.json, deploy/member-account.yaml and
                                        deploy/iam-forwarder.yaml from the code (see cli/iam.py)
``python -m cli.build slack-manifest URL``  print deploy/slack-app-manifest.yaml for the API at URL
``python -m cli.build check-python [STAGE]``  fail unless this Python is the one the stage's Powertools
                                        layer is built for (``make package`` / ``make deploy`` run it first)
``python -m cli.build chalice-deploy STAGE REGION``  ``chalice deploy`` with the Powertools layer resolved in
                                        REGION (see cli/layer.py), the settings with the bot's exact identities
``python -m cli.build package [STAGE]`` all of the above (the settings with the bot's exact roles and
                                        functions in ``ACCOUNT`` and the region, else the credentials'
                                        account), then ``chalice package --merge-template
                                        deploy/resources.yaml`` into build/package (deployment.zip +
                                        sam.yaml), slim the zip and fail if it is over ``BUDGET_BYTES``

The SAM template is then finished so that it deploys the same bot as ``chalice deploy`` in any region:
function and role names as Chalice names them (``safetycatch-<stage>[-<function>]``, which the bot's
``self_role_patterns`` recognise), the Powertools layer of the stack's own region (the pinned release's public
SSM mapping, resolved by CloudFormation; see cli/layer.py), and the Stage parameter pinned to the packaged stage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.accounts import DEFAULT_MEMBER_ROLE
from chalicelib.settings import COMPILED_PATH, PolicyError, from_json, read_dir, validate
from cli import dead_letters, iam, identities, layer, member_template
from cli.slim import SlimReport, slim_zip

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "package"
MERGE_TEMPLATE = ROOT / "deploy" / "resources.yaml"
SLACK_MANIFEST = ROOT / "deploy" / "slack-app-manifest.yaml"
PLACEHOLDER_API = "https://API_ID.execute-api.REGION.amazonaws.com/api"
BUDGET_BYTES = 400_000  # the Lambda zip (code + slack-sdk); boto3 and Powertools come from the runtime / layer
LAYER = re.compile(r"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<rest>\d{12}:layer:.+)$")


class BuildError(Exception):
    """The build cannot produce a deployable artifact (one line, exit 2)."""


# the Python in a layer ARN (-python311-) or in the published SSM mapping cli/layer.py pins (/python3.11/)
LAYER_PYTHON = re.compile(r"[-/]python(?P<major>3)\.?(?P<minor>\d{1,2})[-/]")


def layer_python(stage: str, config: dict[str, Any] | None = None) -> tuple[int, int]:
    """The Python (major, minor) of the stage's Powertools layer, from its ARN in .chalice/config.json.

    Example:
        >>> layer_python("dev")
        (3, 11)
    """
    config = config or json.loads((ROOT / ".chalice" / "config.json").read_text())
    layers = [*config.get("layers", []), *config.get("stages", {}).get(stage, {}).get("layers", [])]
    for arn in layers:
        if m := LAYER_PYTHON.search(arn):
            return int(m["major"]), int(m["minor"])
    raise BuildError(f"stage {stage}: no Powertools layer with a python version in .chalice/config.json")


def check_python(stage: str, running: tuple[int, int] = sys.version_info[:2]) -> None:
    """``chalice package`` builds for the Python that runs it: it must be the layer's, or the deployed bot and
    its layer disagree (a wheel or the layer itself fails to import). BuildError (one line) when they differ.

    Example:
        >>> check_python("dev", (3, 12))
        Traceback (most recent call last):
        cli.build.BuildError: .venv runs Python 3.12 but stage dev's Powertools layer is for Python 3.11: ...
    """
    wanted = layer_python(stage)
    if tuple(running) != wanted:
        raise BuildError(f".venv runs Python {running[0]}.{running[1]} but stage {stage}'s Powertools layer is for "
                         f"Python {wanted[0]}.{wanted[1]}: make clean, then make package PYTHON=python"
                         f"{wanted[0]}.{wanted[1]}")


def compile_policies(policies_dir: Path = ROOT / "policies", target: Path = COMPILED_PATH, stage: str | None = None,
                     account: str | None = None, region: str | None = None) -> dict:
    """Validate the YAML policies and write them as JSON for the Lambda package. With the ``stage``, ``account``
    and ``region`` the package is for, the bot's own identities become exact: ``self_role_patterns`` lists its
    execution roles' ARNs (and the member role by its exact name), ``own_functions`` its functions' ARNs - not
    ``arn:aws:iam::*:role/safetycatch-*``, which anyone able to create such a role could hide behind."""
    policy_set = validate(read_dir(policies_dir))
    data = policy_set.to_json()
    if stage and account and region:
        member_role = iam.stage_settings(stage)["env"].get("SAFETYCATCH_MEMBER_ROLE", DEFAULT_MEMBER_ROLE)
        data["settings"]["self_role_patterns"] = [
            *identities.role_arns(account, stage),
            # in member accounts the bot acts as the member role, which trusts only the roles above
            f"arn:{identities.PARTITION}:iam::*:role/{member_role}"]
        data["settings"]["own_functions"] = identities.function_arns(account, region, stage)
        from_json(data)  # still valid
    staged = target.with_suffix(".tmp")
    staged.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    staged.replace(target)  # atomic: a process reading the compiled policies never sees half a file
    return data


def package_identity(account: str | None = None, region: str | None = None) -> tuple[str, str]:
    """The account and region the package is for: given, else ``ACCOUNT`` / ``AWS_REGION`` (or
    ``AWS_DEFAULT_REGION``), else the AWS credentials' account (STS) and the session's region."""
    import boto3

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or \
        boto3.session.Session().region_name or "us-east-1"
    account = account or os.environ.get("ACCOUNT", "").strip()
    if not account:
        try:
            account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as exc:  # no credentials, no network: one line, exit 2
            raise BuildError("cannot tell which account the package is for: set ACCOUNT=<12 digits> or AWS "
                             f"credentials ({type(exc).__name__})") from exc
    if not re.fullmatch(r"\d{12}", account):
        raise BuildError(f"ACCOUNT: expected 12 digits, got {account[:20]!r}")
    return account, region


def region_source() -> str:
    """Where ``package_identity`` takes the region from (said in the build summary: a silent default is a trap)."""
    import boto3

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(name):
            return name
    return "the AWS profile" if boto3.session.Session().region_name else ""


def build_summary(stage: str, account: str, region: str, data: dict[str, Any]) -> list[str]:
    """What a package was compiled for, one line each, and a warning when nobody can approve.

    Example:
        >>> data = {"settings": {"approvers": [], "approver_groups": []},
        ...         "policies": {"memory-cpu": {"mode": "approve"}}}
        >>> build_summary("prod", "123456789012", "eu-west-1", data)[-1][:28]
        'warning: nobody can approve:'
    """
    settings = data["settings"]
    source = region_source()
    where = f"from {source}" if source else "no region set (AWS_REGION, AWS_DEFAULT_REGION or the profile's): the " \
                                            "default"
    lines = [f"built stage {stage} for account {account}, region {region} ({where}): the bot's own roles and "
             f"functions are named in {account} / {region}"]
    people = [*settings.get("approvers", []), *(f"group {g}" for g in settings.get("approver_groups", []))]
    lines.append(f"approvers: {', '.join(people)}" if people else "approvers: none")
    waiting = sorted(pid for pid, cfg in data["policies"].items() if cfg.get("mode") == "approve")
    if not people:
        lines.append("warning: nobody can approve: approvers and approver_groups are empty in policies/settings.yaml, "
                     f"so approve-mode fixes ({', '.join(waiting) or 'none today'}) wait until they expire; add Slack "
                     "user ids (APPROVERS=U0123ABCD,... with make deploy) and package again")
    return lines


def write_iam() -> list[Path]:
    """Derive the IAM policy files, the member-account and IAM-forwarder templates, and the stages' Powertools
    layer (cli/layer.py) from the code."""
    return [*iam.write_policies(), member_template.write(), member_template.write_iam_forwarder(),
            layer.write_config(iam.CONFIG)]


def chalice_resources(stage: str) -> dict[str, str]:
    """SAM logical id -> Chalice's resource name of each function (``on_config_change``, ``api_handler``)."""
    return identities.chalice_resources()


def regional_layer(arn: str) -> Any:
    """A layer ARN made region-independent: ``Fn::Sub`` on the stack's own region and partition."""
    m = LAYER.match(arn)
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:{m['rest']}"} if m else arn


def finish_template(template: dict[str, Any], stage: str, resources_by_id: dict[str, str],
                    app_name: str = "safetycatch") -> dict[str, Any]:
    """Name functions and roles as ``chalice deploy`` does (function ``<app>-<stage>-<name>``, the API handler
    ``<app>-<stage>``; role ``<app>-<stage>-<name>``), regionalise layers, pin the Stage parameter."""
    prefix = f"{app_name}-{stage}"
    for logical, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            name = resources_by_id.get(logical)
            if name:
                props["FunctionName"] = prefix if name == "api_handler" else f"{prefix}-{name}"
            props["Layers"] = [regional_layer(layer) for layer in props.get("Layers", [])]
        elif resource["Type"] == "AWS::IAM::Role":
            # Chalice calls the API handler's role ApiHandlerRole while the function is APIHandler: match case-blind
            by_lower = {key.lower(): value for key, value in resources_by_id.items()}
            owner = by_lower.get(logical[:-len("Role")].lower() if logical.endswith("Role") else "")
            props["RoleName"] = f"{prefix}-{owner}" if owner else f"{prefix}-{logical}"[:64]
    _fix_log_group_refs(template)
    _reference_slack_secret(template)
    _wire_sweep_queue(template)
    stage_param = template.setdefault("Parameters", {}).setdefault("Stage", {"Type": "String"})
    stage_param.update(Default=stage, AllowedValues=[stage])
    return template


def _fix_log_group_refs(template: dict[str, Any]) -> None:
    """Chalice names the API handler's log group after ``${ApiHandler}`` while the function is ``APIHandler``:
    point each log group at the function it belongs to, matching the logical id case-insensitively."""
    by_lower = {logical.lower(): logical for logical in template["Resources"]}
    for resource in template["Resources"].values():
        name = resource.get("Properties", {}).get("LogGroupName")
        if resource["Type"] == "AWS::Logs::LogGroup" and isinstance(name, dict) and "Fn::Sub" in name:
            resource["Properties"]["LogGroupName"] = {"Fn::Sub": re.sub(
                r"\$\{(\w+)\}", lambda m: "${" + by_lower.get(m[1].lower(), str(m[1])) + "}", name["Fn::Sub"])}


def _reference_slack_secret(template: dict[str, Any]) -> None:
    """Point ``SAFETYCATCH_SLACK_SECRET`` at the ARN of the secret the stack creates (``!Ref SlackSecret``) instead of
    its name: the environment then holds a reference that the bot's own env-secrets check (before deploy and in the
    sweep) recognises, and the name is no longer written in two places. The IAM scope (``secret:<name>-??????``)
    matches the ARN."""
    if template["Resources"].get("SlackSecret", {}).get("Type") != "AWS::SecretsManager::Secret":
        return
    for resource in template["Resources"].values():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if resource["Type"] == "AWS::Serverless::Function" and "SAFETYCATCH_SLACK_SECRET" in variables:
            variables["SAFETYCATCH_SLACK_SECRET"] = {"Ref": "SlackSecret"}


def _wire_sweep_queue(template: dict[str, Any]) -> None:
    """The organisation sweep (chalicelib/fanout.py): point the sweep worker's SQS event source at the stack's
    ``SweepQueue`` (Chalice names a queue by a fixed name), report partial batch failures, and give every
    function the queue's URL in ``SAFETYCATCH_SWEEP_QUEUE`` (the schedule sends to it)."""
    if template["Resources"].get("SweepQueue", {}).get("Type") != "AWS::SQS::Queue":
        return
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource.setdefault("Properties", {})
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "SQS":
                event["Properties"]["Queue"] = {"Fn::GetAtt": ["SweepQueue", "Arn"]}
                event["Properties"]["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
        variables = props.get("Environment", {}).get("Variables", {})
        if "SAFETYCATCH_SWEEP_QUEUE" in variables:
            variables["SAFETYCATCH_SWEEP_QUEUE"] = {"Ref": "SweepQueue"}


def slack_manifest(api_url: str) -> str:
    """The Slack app manifest with the bot's API URL in the slash command and interactivity URLs.

    Example:
        >>> "https://abc123.execute-api.eu-west-1.amazonaws.com/api/slack/actions" in slack_manifest(
        ...     "https://abc123.execute-api.eu-west-1.amazonaws.com/api/")
        True
    """
    if not re.fullmatch(r"https://[\w.-]+(:\d+)?(/[\w.-]*)*", api_url.rstrip("/")):
        raise BuildError(f"slack-manifest: expected the API's https URL, got {api_url[:80]!r}")
    return SLACK_MANIFEST.read_text().replace(PLACEHOLDER_API, api_url.rstrip("/"))


def stage_project(target: Path) -> Path:
    """A private copy of what ``chalice package`` reads (app.py, chalicelib/, requirements.txt, the stage
    config and IAM policy files): builds running at once never share a file, and no stray bytecode or local
    state of the checkout is packaged."""
    target.mkdir(parents=True)
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(ROOT / name, target / name)
    shutil.copytree(ROOT / "chalicelib", target / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", COMPILED_PATH.name))
    (target / ".chalice").mkdir()
    for config in [iam.CONFIG, *iam.CONFIG.parent.glob("policy-*.json")]:
        shutil.copy2(config, target / ".chalice" / config.name)
    return target


def package(out: Path = OUT, stage: str = "dev", derive_iam: bool = True, account: str | None = None,
            region: str | None = None) -> tuple[Path, SlimReport]:
    """Compile (the bot's exact identities for ``account`` / ``region``, see ``package_identity``), derive IAM
    (unless ``derive_iam`` is off: tests check the files instead), ``chalice package`` with the merge template,
    finish the template, slim the zip and check its budget. Returns the zip's path and what slimming did."""
    account, region = package_identity(account, region)
    if derive_iam:
        write_iam()
    chalice = Path(sys.executable).with_name("chalice")
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    with tempfile.TemporaryDirectory(prefix="safetycatch-build-") as staging:
        project = stage_project(Path(staging) / "project")
        compile_policies(target=project / "chalicelib" / COMPILED_PATH.name,  # only the package carries it
                         stage=stage, account=account, region=region)
        subprocess.run([str(chalice), "package", "--stage", stage, "--merge-template", str(MERGE_TEMPLATE),
                        str(out.resolve())], cwd=project, check=True, env=env, stdout=subprocess.DEVNULL)
    template_path = out / "sam.yaml"
    resources_by_id = chalice_resources(stage)
    template = finish_template(yaml.safe_load(template_path.read_text()), stage, resources_by_id)
    template = dead_letters.add_dead_letters(template, resources_by_id)  # never lose an event
    template_path.write_text(yaml.safe_dump(template, sort_keys=False, width=120))
    zip_path = out / "deployment.zip"
    report = slim_zip(zip_path, iam.source_files())
    if report.after > BUDGET_BYTES:
        raise BuildError(f"{zip_path.name} is {report.after:,} bytes, over the {BUDGET_BYTES:,}-byte budget")
    return zip_path, report


def chalice_deploy(stage: str, region: str) -> int:
    """``chalice deploy`` with the pinned Powertools layer resolved in ``region`` (the API needs a concrete ARN;
    .chalice/config.json holds the region-independent reference and is put back afterwards)."""
    import boto3

    found = layer.resolve(boto3.client("ssm", region_name=region))
    if found.status != "ok":
        raise BuildError(f"chalice-deploy: no Powertools {layer.POWERTOOLS_VERSION} layer in {region}: {found.detail}")
    original = iam.CONFIG.read_text()
    layer.write_config(iam.CONFIG, [found.arn])
    try:
        chalice = Path(sys.executable).with_name("chalice")
        env = {**os.environ, "AWS_DEFAULT_REGION": region}
        return subprocess.run([str(chalice), "deploy", "--stage", stage], cwd=ROOT, env=env, check=False).returncode
    finally:
        iam.CONFIG.write_text(original)


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["compile"] and len(argv) <= 2:
            stage = argv[1] if len(argv) == 2 else None
            account, region = package_identity() if stage else (None, None)
            data = compile_policies(stage=stage, account=account, region=region)
            print(f"compiled {len(data['policies'])} policies into {COMPILED_PATH.relative_to(ROOT)}")
        elif argv[:1] == ["iam"]:
            for path in write_iam():
                print(f"wrote {path.relative_to(ROOT)}")
        elif argv[:1] == ["check-python"] and len(argv) <= 2:
            check_python(argv[1] if len(argv) == 2 else os.environ.get("STAGE", "dev"))
        elif argv[:1] == ["slack-manifest"] and len(argv) == 2:
            print(slack_manifest(argv[1]), end="")
        elif argv[:1] == ["package"] and len(argv) <= 2:
            stage = argv[1] if len(argv) == 2 else os.environ.get("STAGE", "dev")
            account, region = package_identity()
            zip_path, report = package(stage=stage, account=account, region=region)
            print(
                f"{zip_path.relative_to(ROOT)}: {report.after:,} bytes (budget {BUDGET_BYTES:,}; "
                f"{report.before:,} before slimming, {len(report.removed)} files dropped: "
                "unused slack-sdk, stray bytecode)"
            )
            print(f"{(zip_path.parent / 'sam.yaml').relative_to(ROOT)}: stage {stage}")
            for line in build_summary(stage, account, region, validate(read_dir(ROOT / "policies")).to_json()):
                print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
        elif argv[:1] == ["chalice-deploy"] and len(argv) == 3:
            account = package_identity(region=argv[2])[0]
            data = compile_policies(stage=argv[1], account=account, region=argv[2])
            for line in build_summary(argv[1], account, argv[2], data):
                print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
            return chalice_deploy(argv[1], argv[2])
        else:
            print("usage: python -m cli.build compile [STAGE] | iam | package [STAGE] | check-python [STAGE] | "
                  "slack-manifest URL | chalice-deploy STAGE REGION", file=sys.stderr)
            return 2
    except (PolicyError, BuildError) as exc:
        print(f"safetycatch: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"safetycatch: chalice package failed (exit {exc.returncode})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
