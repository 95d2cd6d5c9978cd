"""One id rule for JSON, ASFF and OCSF (issue 23.8): a policy that finds two things on one function (two SQS
mappings without ReportBatchItemFailures, provisioned concurrency idle on two aliases) gives two findings with two
ids in the JSON output, and Security Hub and OCSF must keep them apart too - one record each in one batch, and
archiving one (its mapping fixed) leaves the other active."""

from __future__ import annotations

from chalicelib.core.model import Decision, Finding, FixSpec
from chalicelib.exports.export import asff, ocsf
from chalicelib.exports.securityhub import SecurityHubSink

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:orders-worker"
MAPPINGS = ("0b5c9c2e-1111-4a8e-9b7e-3f0c8a1d2e01", "7d1e4f3a-2222-4c6b-8e9f-1a2b3c4d5e02")


def _mapping_finding(uuid: str, outcome: str = "pending-approval") -> dict:
    finding = Finding("batch-partial-failure", FUNCTION, "medium", f"mapping {uuid} retries whole batches",
                      FixSpec("report-batch-item-failures", uuid, {"FunctionResponseTypes":
                                                                       ["ReportBatchItemFailures"]}, {}))
    return Decision(finding, "approve", outcome).to_json()


def _alias_finding(alias: str) -> dict:
    finding = Finding("provisioned-idle", f"{FUNCTION}", "low", f"alias {alias} 8% used",
                      evidence={"qualifier": alias})
    return Decision(finding, "approve", "pending-approval").to_json()


def test_two_mappings_of_one_function_have_one_id_each_everywhere():
    findings = [_mapping_finding(u) for u in MAPPINGS]
    json_ids = [f["id"] for f in findings]
    assert len(set(json_ids)) == 2
    assert [asff(f, "2026-12-07T21:00:00Z")["Id"] for f in findings] == json_ids
    assert [ocsf(f, 0)["finding_info"]["uid"] for f in findings] == json_ids
    assert [ocsf(f, 0)["metadata"]["uid"] for f in findings] == json_ids


def test_two_aliases_of_one_function_too():
    findings = [_alias_finding(a) for a in ("live", "canary")]
    assert len({asff(f, "2026-12-07T21:00:00Z")["Id"] for f in findings}) == 2
    assert len({ocsf(f, 0)["finding_info"]["uid"] for f in findings}) == 2


class _Clients:
    region = "us-east-1"


def test_one_batch_keeps_both_and_archiving_one_mapping_leaves_the_other_active():
    publisher = SecurityHubSink(_Clients(), "123456789012", clock=lambda: 1_765_000_000.0)  # type: ignore[arg-type]
    first = publisher.records([_mapping_finding(u) for u in MAPPINGS], {FUNCTION: {"batch-partial-failure"}}, {})
    assert len({r["Id"] for r in first}) == 2 and all(r["RecordState"] == "ACTIVE" for r in first)
    existing = {r["Id"]: r for r in first}
    # the next evaluation: the first mapping was fixed, the second still lacks reporting
    later = publisher.records([_mapping_finding(MAPPINGS[0], "fixed"), _mapping_finding(MAPPINGS[1])],
                              {FUNCTION: {"batch-partial-failure"}}, existing)
    states = {r["Id"]: r["RecordState"] for r in later}
    fixed_id, open_id = (_mapping_finding(u)["id"] for u in MAPPINGS)
    assert states == {fixed_id: "ARCHIVED", open_id: "ACTIVE"}
    # and a mapping that is no longer found at all (deleted) is archived under its own id, not the other's
    gone = publisher.records([_mapping_finding(MAPPINGS[1])], {FUNCTION: {"batch-partial-failure"}}, existing)
    assert {r["Id"]: r["RecordState"] for r in gone} == {open_id: "ACTIVE", fixed_id: "ARCHIVED"}
