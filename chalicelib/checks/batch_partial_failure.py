"""batch-partial-failure (footgun 3): one bad record makes the whole batch retry.

Without ReportBatchItemFailures on an SQS, Kinesis or DynamoDB-stream mapping, one failed record sends the
whole batch back: records that succeeded are processed again (duplicate writes, double charges). Enabling it
is half the fix: the handler must also return ``{"batchItemFailures": [{"itemIdentifier": id}, ...]}``,
which is why the default mode asks a human first.
"""

from __future__ import annotations

from chalicelib.checks.base import Check, Param, Params
from chalicelib.core.model import AccountFacts, Finding, FixSpec, FunctionSnapshot

BATCH_SOURCES = {"sqs": "SQS queue", "kinesis": "Kinesis stream", "dynamodb": "DynamoDB stream of table"}
REPORT = "ReportBatchItemFailures"


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """One finding per batching mapping (BatchSize > min_batch_size) without ReportBatchItemFailures.

    Example:
        >>> from chalicelib.core.model import EventSourceMapping, FunctionRef
        >>> m = EventSourceMapping("53610531", "arn:aws:sqs:us-east-1:123456789012:orders-queue",
        ...                        "arn:aws:lambda:us-east-1:123456789012:function:orders-api", 10, (), "Enabled")
        >>> fn = FunctionSnapshot(FunctionRef("orders-api", "123456789012", "us-east-1"), mappings=(m,))
        >>> evaluate(fn, {"min_batch_size": 1}, AccountFacts())[0].fix.params
        {'FunctionResponseTypes': ['ReportBatchItemFailures']}
    """
    findings = []
    for mapping in snapshot.mappings:
        source = BATCH_SOURCES.get(mapping.source_kind)
        if not source or mapping.batch_size <= params["min_batch_size"] or REPORT in mapping.response_types:
            continue
        message = (
            f"{source} {mapping.source_name} (batch of {mapping.batch_size}) retries every record when one "
            f"fails. Enable {REPORT} on mapping {mapping.uuid} - and make the handler return "
            f'{{"batchItemFailures": [{{"itemIdentifier": ...}}]}} for the failed ones.'
        )
        findings.append(Finding(
            policy=CHECK.id, function_arn=snapshot.arn, severity="", message=message,
            fix=FixSpec("report-batch-item-failures", mapping.uuid,
                        {"FunctionResponseTypes": [*mapping.response_types, REPORT]},
                        {"FunctionResponseTypes": list(mapping.response_types)}),
            evidence={"mapping": mapping.uuid, "source": mapping.source_arn, "batch_size": mapping.batch_size},
        ))
    return findings


CHECK = Check(
    id="batch-partial-failure",
    footgun="3",
    title="Batch mapping without ReportBatchItemFailures",
    doc=__doc__ or "",
    default_mode="approve",
    default_severity="medium",
    evaluate=evaluate,
    params=(Param("min_batch_size", int, 1, "Mappings with BatchSize at or below this are not flagged "
                  "(a batch of one cannot partially fail).", minimum=1, maximum=10000),),
    needs=frozenset({"mappings"}),
    fix_actions=("report-batch-item-failures",),
    read_permissions=("lambda:ListEventSourceMappings", "lambda:GetEventSourceMapping"),
    triggers=frozenset(("CreateEventSourceMapping", "UpdateEventSourceMapping")),
)
