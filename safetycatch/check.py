"""``safetycatch check FILE...``: the policies, before deploy, on SAM / CloudFormation templates and Terraform plans.

The template readers (``safetycatch/templates``) build the same ``FunctionSnapshot`` objects the inventory builds from
AWS, and the very same check modules evaluate them: one rule, three enforcement points (the template in CI,
the change event, the sweep). No credentials and no network are used. Checks that need what only a running
function has (metrics, logs) are not run, and the output says so.

Output: ``table`` (one ``file:line`` block per finding, for CI logs), ``json`` (contract:
``{"findings": [{"policy", "resource", "file", "line", "severity", "message", "fix"}], "errors": []}``) or
``sarif`` (2.1.0, for code-scanning uploads). Exit 0, 1 when a finding is at or above ``--fail-on``, 2 when a
file cannot be parsed (one line naming the file and line).

Example:
    $ safetycatch check template.yaml plan.json --fail-on medium
    $ safetycatch check template.yaml --format sarif > safetycatch.sarif
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.checks import REGISTRY
from chalicelib.core.model import SEVERITIES, AccountFacts, Finding, effective_severity, severity_rank
from chalicelib.policy.settings import PolicyConfig, PolicySet
from safetycatch import check_fix
from safetycatch.templates import TemplateFunction

# Policies evaluated on definitions, and why the others cannot be (a test keeps every policy in one of them).
TEMPLATE_POLICIES = ("apigw-timeout", "batch-partial-failure", "cold-start-latency", "env-secrets", "package-size",
                     "recursive-trigger", "reserved-concurrency", "sync-error-status", "vpc-no-egress")
RUNTIME_ONLY = {
    "memory-cpu": "needs the running function's Duration and CPU metrics",
    "provisioned-idle": "needs the provisioned-concurrency utilization metrics of the running function",
    "tmp-storage": "needs the function's logs, where 'No space left on device' shows",
    "runaway-loop": "watches the invocation metrics of the deployed function, whose alarm the bot keeps",
}
# Account facts are unknown before deploy: reserved-concurrency assumes its account_limit param.
TEMPLATE_ACCOUNT = AccountFacts(unavailable="not known before deploy")
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
INFORMATION_URI = "https://github.com/safetycatch/safetycatch#before-deploy"


@dataclass
class CheckReport:
    """Findings over every file, the policies not run (with the reason) and what could not be read."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_run: list[dict[str, str]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    functions: int = 0
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"findings": self.findings, "errors": self.errors, "not_run": self.not_run, "notes": self.notes,
                "functions_checked": self.functions, "files": self.files}

    def failing(self, fail_on: str | None) -> bool:
        return bool(fail_on) and any(severity_rank(f["severity"]) >= severity_rank(str(fail_on))
                                     for f in self.findings if not f.get("exempt"))


# -- the template change each finding proposes -------------------------------------------------------------

def _path(fn: TemplateFunction, prop: str, tf_attribute: str) -> str:
    if fn.language == "terraform":
        return f"{fn.resource}.{tf_attribute}"
    return f"Resources.{fn.resource}.Properties.{prop}"


def _proposal(fn: TemplateFunction, finding: Finding) -> tuple[dict[str, Any], str]:
    """The template change (``{"path", "value", "change"}``) and the line it is about."""
    policy, ev, spec = finding.policy, finding.evidence, finding.fix
    params = spec.params if spec else {}
    tf = fn.language == "terraform"
    if policy == "apigw-timeout" and "Timeout" not in params:  # no safe value: the message says what to do
        return ({"path": _path(fn, "Timeout", "timeout"), "value": None,
                 "change": "no automatic change (see the message): raise the integration timeout or move the work "
                           "behind a 202 + poll"}, "Timeout")
    if policy == "apigw-timeout":
        target = params["Timeout"]
        return ({"path": _path(fn, "Timeout", "timeout"), "value": target,
                 "change": f"set {'timeout' if tf else 'Timeout'} to {target} (seconds)"}, "Timeout")
    if policy == "batch-partial-failure":
        path = fn.mapping_paths.get(ev["mapping"], _path(fn, "FunctionResponseTypes", "function_response_types"))
        return ({"path": path, "value": ["ReportBatchItemFailures"],
                 "change": "add ReportBatchItemFailures to the function response types, and return "
                           "batchItemFailures from the handler"}, f"mapping:{ev['mapping']}")
    if policy == "reserved-concurrency" and "ReservedConcurrentExecutions" in params:
        value = params["ReservedConcurrentExecutions"]
        name = "reserved_concurrent_executions" if tf else "ReservedConcurrentExecutions"
        return ({"path": _path(fn, "ReservedConcurrentExecutions", name), "value": value,
                 "change": f"set {name} to {value}"}, "Tags")
    return _advice(fn, finding)


def _advice(fn: TemplateFunction, finding: Finding) -> tuple[dict[str, Any], str]:
    """Proposals that are a design change rather than one value."""
    tf = fn.language == "terraform"
    policy, ev = finding.policy, finding.evidence
    if policy == "env-secrets":
        names = sorted(ev.get("variables", {}))
        value = ("the secret's ARN, read at cold start" if tf
                 else "{{resolve:secretsmanager:SECRET_ID:SecretString:KEY}} or the secret's ARN, read at cold start")
        return ({"path": _path(fn, f"Environment.Variables.{names[0]}", f"environment.variables.{names[0]}"),
                 "value": value, "change": f"replace the literal value of {', '.join(names)} with {value}; rotate "
                 "it", "variables": names}, "Environment")
    if policy == "cold-start-latency":
        slots = ev.get("suggested_pc", 2)
        change = (f"add aws_lambda_provisioned_concurrency_config with {slots} on an alias, or raise memory_size"
                  if tf else f"add AutoPublishAlias and ProvisionedConcurrencyConfig: "
                             f"{{ProvisionedConcurrentExecutions: {slots}}}, or raise MemorySize")
        where = (f"aws_lambda_provisioned_concurrency_config for {fn.resource}" if tf
                 else _path(fn, "ProvisionedConcurrencyConfig", ""))
        return ({"path": where, "value": slots,
                 "change": change}, "MemorySize")
    if policy == "recursive-trigger":
        return ({"path": _path(fn, "Policies" if not tf else "Role", "role"), "value": None,
                 "change": "write to a different bucket / queue / topic than the trigger (or filter the trigger), "
                           "and cap the damage: ReservedConcurrentExecutions and RecursiveLoop: Terminate"},
                "Policies")
    if policy == "package-size":
        return ({"path": _path(fn, "CodeUri", "filename"), "value": None,
                 "change": "drop what the runtime has (boto3), tests and docs; move shared libraries to a layer"},
                "CodeUri")
    if policy == "vpc-no-egress":
        return ({"path": _path(fn, "VpcConfig", "vpc_config"), "value": None,
                 "change": "route 0.0.0.0/0 of the subnets' route table to a NAT gateway, add VPC endpoints for the "
                           "AWS services it calls, or remove VpcConfig"}, "VpcConfig")
    if policy == "sync-error-status":
        return ({"path": "Integration.IntegrationResponses", "value": {"SelectionPattern": ".+", "StatusCode": "500"},
                 "change": "add an integration response with SelectionPattern '.+' mapped to 500, or use "
                           "AWS_PROXY"}, "")
    return ({"path": "", "value": None, "change": finding.message}, "")


# -- evaluation ---------------------------------------------------------------------------------------------

def _exempt(fn: TemplateFunction, policy_set: PolicySet, cfg: PolicyConfig) -> bool:
    tag = policy_set.settings.exempt_tag
    return fn.snapshot.tags.get(tag, "").strip().lower() == "true" or cfg.exempts(fn.snapshot.name)


def evaluate(functions: list[TemplateFunction], policy_set: PolicySet, report: CheckReport) -> None:
    """Run every enabled template policy over ``functions`` into ``report`` (pure: no AWS).

    Example:
        report = CheckReport()
        evaluate(read(Path("template.yaml")), settings.load(), report)
    """
    enabled = [(c, cfg) for c, cfg in policy_set.enabled() if c.id in TEMPLATE_POLICIES]
    for fn in functions:
        report.functions += 1
        if fn.notes:
            report.notes.append({"resource": fn.resource, "file": fn.file, "line": fn.line, "notes": fn.notes})
        for check, cfg in enabled:
            if not check.in_scope(fn.snapshot, cfg.params):
                continue
            try:
                found = check.evaluate(fn.snapshot, cfg.params, TEMPLATE_ACCOUNT)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                report.errors.append(f"{fn.file}:{fn.line}: {check.id} failed on {fn.resource}: {exc}")
                continue
            for finding in found:
                report.findings.append(_finding_json(fn, finding, cfg, _exempt(fn, policy_set, cfg)))
    enabled_ids = {c.id for c, _ in policy_set.enabled()}
    report.not_run = [{"policy": pid, "reason": reason} for pid, reason in sorted(RUNTIME_ONLY.items())
                      if pid in enabled_ids]


def _finding_json(fn: TemplateFunction, finding: Finding, cfg: PolicyConfig, exempt: bool) -> dict[str, Any]:
    fix, key = _proposal(fn, finding)
    out = {"policy": finding.policy, "resource": fn.resource, "file": fn.file,
           "line": fn.line_of(key) if key else fn.line,
           "severity": effective_severity(finding.severity, cfg.severity), "message": finding.message,
           "fix": fix}
    if exempt:
        out["exempt"] = True
    if key in fn.inherited:  # the line is SAM Globals': a change there changes every function
        out["inherited"] = True
    return out


# -- output ---------------------------------------------------------------------------------------------------

def render_text(report: CheckReport, out: Any = None) -> None:
    """Compiler-style lines: ``file:line: severity policy resource`` then the message and the fix."""
    out = out or sys.stdout
    for f in sorted(report.findings, key=lambda f: (f["file"], f["line"], f["policy"])):
        mark = " (exempt)" if f.get("exempt") else ""
        print(f"{f['file']}:{f['line']}: {f['severity']} {f['policy']} {f['resource']}{mark}", file=out)
        print(f"    {f['message']}", file=out)
        print(f"    fix: {f['fix']['change']}", file=out)
    for line in note_summary(report.notes):
        print(line, file=out)
    for error in report.errors:
        print(f"error: {error}", file=out)
    counts = {s: sum(1 for f in report.findings if f["severity"] == s) for s in reversed(SEVERITIES)}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
    plural = {"functions": "" if report.functions == 1 else "s", "files": "" if len(report.files) == 1 else "s"}
    print(f"{report.functions} function{plural['functions']} in {len(report.files)} file{plural['files']}: {summary}.",
          file=out)
    if report.not_run:
        print("Not run before deploy: " + "; ".join(f"{n['policy']} ({n['reason']})" for n in report.not_run) + ".",
              file=out)


def note_summary(notes: list[dict[str, Any]]) -> list[str]:
    """One line per kind of note (what cannot be known before deploy), naming a few of the resources;
    ``--format json`` lists every note.

    Example:
        >>> note_summary([{"resource": r, "file": "t.yaml", "line": 1, "notes": ["the code is in S3 (why)"]}
        ...               for r in ("A", "B")])
        ['note: 2 functions: the code is in S3 (why) - A, B']
    """
    kinds: dict[str, list[str]] = {}
    for note in notes:
        for text in note["notes"]:
            kind = re.sub(r"^(CodeUri|filename|managed policy|policy template) \S+", r"\1 ...", text)
            kinds.setdefault(kind, []).append(note["resource"])
    lines = []
    for kind, resources in kinds.items():
        named = ", ".join(sorted(set(resources))[:5]) + (", ..." if len(set(resources)) > 5 else "")
        count = len(set(resources))
        lines.append(f"note: {count} function{'s' if count != 1 else ''}: {kind} - {named}")
    return lines


def _uri(file: str) -> str:
    path = Path(file)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def _rule(policy_id: str) -> dict[str, Any]:
    check = REGISTRY[policy_id]
    summary = (check.doc.split("\n\n", 1)[1] if "\n\n" in check.doc else check.doc).strip()
    return {"id": check.id, "name": "".join(w.title() for w in check.id.split("-")),
            "shortDescription": {"text": check.title}, "fullDescription": {"text": " ".join(summary.split())[:1000]},
            "help": {"text": f"Footgun {check.footgun}: {check.title}. Run `safetycatch explain {check.id}`."},
            "defaultConfiguration": {"level": SARIF_LEVELS[check.default_severity]},
            "properties": {"tags": ["aws-lambda", "safetycatch", f"footgun-{check.footgun}"],
                           "security-severity": SECURITY_SEVERITY[check.default_severity]}}


def to_sarif(report: CheckReport) -> dict[str, Any]:
    """SARIF 2.1.0: one result per finding (``ruleId`` = policy id, a physical location with ``startLine``)."""
    rule_ids = sorted(set(TEMPLATE_POLICIES))
    results = []
    for f in report.findings:
        fingerprint = hashlib.sha256(f"{f['policy']}|{f['resource']}|{_uri(f['file'])}".encode()).hexdigest()[:32]
        result: dict[str, Any] = {
            "ruleId": f["policy"], "ruleIndex": rule_ids.index(f["policy"]), "level": SARIF_LEVELS[f["severity"]],
            "message": {"text": f"{f['resource']}: {f['message']} Fix: {f['fix']['change']}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(f["file"])},
                                                "region": {"startLine": max(1, int(f["line"]))}},
                           "logicalLocations": [{"name": f["resource"], "kind": "resource"}]}],
            "partialFingerprints": {"safetycatchResource/v1": fingerprint},
            "properties": {"severity": f["severity"], "fix": f["fix"]},
        }
        if f.get("exempt"):
            result["suppressions"] = [{"kind": "external", "justification": "function is exempt"}]
        if change := check_fix.sarif_fix(f):  # exactly what `check --fix` writes for this finding
            result["fixes"] = [change]
        results.append(result)
    notifications = [{"level": "note", "message": {"text": f"{n['policy']} not run before deploy: {n['reason']}"},
                      "descriptor": {"id": n["policy"]}} for n in report.not_run]
    notifications += [{"level": "error", "message": {"text": e}} for e in report.errors]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "safetycatch", "informationUri": INFORMATION_URI, "version": "0.1.0",
                            "rules": [_rule(pid) for pid in rule_ids]}},
        "invocations": [{"executionSuccessful": not report.errors, "toolExecutionNotifications": notifications}],
        "results": results,
    }]}


# -- the command ------------------------------------------------------------------------------------------------

def add_parser(sub: Any, parents: list[Any] | None = None) -> None:
    """Register ``check`` on the CLI's subparsers (``parents``: the options every command shares, such as -v)."""
    check = sub.add_parser("check", parents=parents or [],
                           help="evaluate the policies on SAM / CloudFormation templates and Terraform plans before "
                                "deploy (no AWS access)")
    check.add_argument("files", nargs="+", metavar="FILE", help="template (YAML / JSON) or `terraform show -json` plan")
    check.add_argument("--policies", metavar="DIR")
    check.add_argument("--format", choices=("table", "json", "sarif"), default="table")
    check.add_argument("--fail-on", choices=SEVERITIES, metavar="SEVERITY",
                       help=f"exit 1 if a finding is at or above this severity ({', '.join(SEVERITIES)})")
    check.add_argument("--fix", action="store_true",
                       help="write the template change of the findings a template can fix into each FILE (in place, "
                            "formatting and comments kept), print the diff, then check the result")


def read_each(files: list[str], report: CheckReport) -> list[list[TemplateFunction]]:
    """Every file's functions; a file that cannot be read is one line in ``report.errors`` (file and line) and
    never stops the others.

    Example:
        report = CheckReport(); read_each(["template.yaml", "broken.yaml"], report); report.errors
        # -> ['broken.yaml:3: ...']
    """
    from safetycatch.templates import TemplateError, read

    found = []
    for name in files:
        report.files.append(name)
        try:
            found.append(read(Path(name)))
        except TemplateError as exc:
            report.errors.append(str(exc))
        except RecursionError:
            report.errors.append(f"{name}: nested too deeply to read")
        except Exception as exc:  # noqa: BLE001 - a reader's bug on hostile input is one line, never a traceback
            report.errors.append(f"{name}: cannot read: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    return found


def run(args: argparse.Namespace) -> int:
    """``safetycatch check``: read and evaluate every file; an unreadable file (or a check that failed on one) is
    one line on stderr and exit 2, after the other files' results are printed. With ``--fix`` the fixable
    findings are written first (``write_fixes``) and the exit is that of the files as they are after it."""
    from chalicelib.policy import settings

    policy_set = settings.load(args.policies)
    report = _report([str(f) for f in args.files], policy_set)
    if getattr(args, "fix", False):
        write_fixes(report, sys.stdout if args.format == "table" else sys.stderr)
        report = _report([str(f) for f in args.files], policy_set)
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    elif args.format == "sarif":
        print(json.dumps(to_sarif(report), indent=2))
    else:
        render_text(report)
    sys.stdout.flush()
    for error in report.errors:
        print(f"safetycatch: {error}", file=sys.stderr)
    if report.errors:
        return 2
    return 1 if report.failing(args.fail_on) else 0


def _report(files: list[str], policy_set: PolicySet) -> CheckReport:
    report = CheckReport()
    for functions in read_each(files, report):
        evaluate(functions, policy_set, report)
    return report


def _is_plan(path: Path) -> bool:
    from safetycatch.templates.terraform import is_plan

    try:
        return path.suffix.lower() == ".json" and bool(is_plan(json.loads(path.read_bytes())))
    except (OSError, ValueError, RecursionError):
        return False


def write_fixes(report: CheckReport, out: Any) -> list[str]:
    """Write each file's fixable findings into it (``check_fix``) and print the unified diff to ``out``; a
    Terraform plan or a file that cannot be rewritten as it is written is left byte-for-byte unchanged (one
    line says so). Returns the files written.

    Example:
        write_fixes(report, sys.stdout)  # -> ["template.yaml"]
    """
    written = []
    for name in report.files:
        findings = [f for f in report.findings if Path(f["file"]) == Path(name) and not f.get("exempt")]
        if not findings:
            continue
        path = Path(name)
        if _is_plan(path):
            print(f"{name}: a Terraform plan is not edited: change the .tf source (the findings say what)", file=out)
            continue
        try:
            if path.is_symlink():
                raise check_fix.Unchangeable("a symbolic link is not edited")
            before = path.read_bytes().decode("utf-8")
            after = check_fix.fixed_text(before, name, findings)
        except (OSError, UnicodeDecodeError, check_fix.Unchangeable) as exc:
            print(f"{name}: not changed: {' '.join(str(exc).split())[:200]}", file=out)
            continue
        if after != before:
            path.write_bytes(after.encode("utf-8"))
            written.append(name)
            print(check_fix.unified_diff(before, after, name), end="", file=out)
    return written
