"""provisioned-idle on moto. moto has no provisioned-concurrency API: List/PutProvisionedConcurrencyConfig are
stubbed (those calls only, botocore Stubber); the utilization metrics are real CloudWatch data in moto."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import fixes
from chalicelib.gateway import Gateway
from chalicelib.handlers import handle_event
from chalicelib.model import FixSpec
from cli.cloudtrail import api_call

LIST = "ListProvisionedConcurrencyConfigs"
OLD = (datetime.now(timezone.utc) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _pc(arn, qualifier="live", allocated=20, status="READY", last_modified=OLD):
    return {"FunctionArn": f"{arn}:{qualifier}", "RequestedProvisionedConcurrentExecutions": allocated,
            "AvailableProvisionedConcurrentExecutions": allocated,
            "AllocatedProvisionedConcurrentExecutions": allocated,
            "Status": status, "LastModified": last_modified}


def _live_alias(aws, name, memory=512):
    arn = aws.function(name, memory=memory)
    version = aws.client("lambda").publish_version(FunctionName=name)["Version"]
    aws.client("lambda").create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    return arn


def _usage(aws, name, utilization, peak, qualifier="live"):
    aws.metric_history(name, "ProvisionedConcurrencyUtilization", utilization, qualifier=qualifier)
    aws.metric_history(name, "ProvisionedConcurrentExecutions", 1, qualifier=qualifier, peak=peak, unit="Count")


def _stub_configs(stub_only, runtime, arn, *configs):
    stubber = stub_only(runtime.clients()("lambda"), LIST)
    stubber.add_response("list_provisioned_concurrency_configs", {"ProvisionedConcurrencyConfigs": list(configs)},
                         {"FunctionName": arn})
    return stubber


def _config_event(arn):
    """A provisioned-concurrency change (the event that concerns this policy: see Check.triggers)."""
    return api_call("PutProvisionedConcurrencyConfig", {"functionName": arn, "qualifier": "live",
                                                        "provisionedConcurrentExecutions": 50},
                    {"requestedProvisionedConcurrentExecutions": 50, "status": "IN_PROGRESS"})


def _idle(report):
    return [f for f in report["findings"] if f["policy"] == "provisioned-idle"]


def test_idle_provisioned_concurrency_asks_to_lower_it_to_the_peak(aws, runtime, stub_only):
    arn = _live_alias(aws, "example-fn")
    _usage(aws, "example-fn", utilization=0.1, peak=3)
    stubber = _stub_configs(stub_only, runtime, arn, _pc(arn))
    (finding,) = _idle(handle_event(_config_event(arn), runtime=runtime))
    stubber.assert_no_pending_responses()
    assert finding["outcome"] == "pending-approval" and finding["mode"] == "approve"
    assert finding["fix"] == {"action": "set-provisioned-concurrency", "target": arn,
                              "params": {"Qualifier": "live", "ProvisionedConcurrentExecutions": 4},
                              "prior": {"Qualifier": "live", "ProvisionedConcurrentExecutions": 20}}
    # 16 slots x 0.5 GB x 730 h x 3600 s x $0.0000041667 = $87.60 a month (labelled estimate)
    assert "average utilization 10% over 7 days, peak 3 in use" in finding["message"]
    assert "Lower it to 4 (peak x 1.25): estimated saving $87.60/month at 512 MB" in finding["message"]
    assert "(AWS list prices, us-east-1)" in finding["message"]


def test_approved_fix_puts_the_lower_value_and_undo_restores_it(aws, stub_only):
    from chalicelib.aws import Clients

    arn = _live_alias(aws, "example-fn")
    clients = Clients("us-east-1")
    stubber = stub_only(clients("lambda"), "PutProvisionedConcurrencyConfig")
    for value in (4, 20):
        stubber.add_response("put_provisioned_concurrency_config", {"RequestedProvisionedConcurrentExecutions": value,
                                                                 "Status": "IN_PROGRESS"},
                             {"FunctionName": arn, "Qualifier": "live", "ProvisionedConcurrentExecutions": value})
    spec = FixSpec("set-provisioned-concurrency", arn, {"Qualifier": "live", "ProvisionedConcurrentExecutions": 4},
                   {"Qualifier": "live", "ProvisionedConcurrentExecutions": 20})
    gateway = Gateway(clients)
    fixes.apply(gateway, spec)
    fixes.undo(gateway, spec)
    stubber.assert_no_pending_responses()
    assert [w.operation for w in gateway.log] == ["PutProvisionedConcurrencyConfig"] * 2
    assert "lambda:PutProvisionedConcurrencyConfig" in fixes.ACTIONS["set-provisioned-concurrency"].permissions


def test_dry_run_gateway_makes_no_call(aws):
    from chalicelib.aws import Clients

    gateway = Gateway(Clients("us-east-1"), dry_run=True)  # moto would answer "not implemented" if called
    fixes.apply(gateway, FixSpec("set-provisioned-concurrency", "arn:aws:lambda:us-east-1:123456789012:function:f",
                                 {"Qualifier": "live", "ProvisionedConcurrentExecutions": 0},
                                 {"Qualifier": "live", "ProvisionedConcurrentExecutions": 5}))
    assert gateway.log[0].params["ProvisionedConcurrentExecutions"] == 1  # never below 1


@pytest.mark.parametrize("utilization, peak, config, expected", [
    (0.8, 19, {}, None),                                   # well used
    (0.5, 12, {}, None),                                   # at the threshold
    (0.3, 18, {}, "but the peak needs it"),                # average low, peak needs all 20: no fix, advice
    (0.1, 3, {"status": "IN_PROGRESS"}, None),             # still allocating
    (0.1, 3, {"last_modified": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")}, None),  # new
])
def test_edges(aws, runtime, stub_only, utilization, peak, config, expected):
    arn = _live_alias(aws, "example-fn")
    _usage(aws, "example-fn", utilization=utilization, peak=peak)
    _stub_configs(stub_only, runtime, arn, _pc(arn, **config))
    found = _idle(handle_event(_config_event(arn), runtime=runtime))
    if expected is None:
        assert found == []
    else:
        (finding,) = found
        assert expected in finding["message"] and finding["fix"] is None and finding["outcome"] == "reported"


def test_never_used_for_the_whole_lookback_goes_down_to_one(aws, runtime, stub_only):
    arn = _live_alias(aws, "example-fn", memory=1024)
    _stub_configs(stub_only, runtime, arn, _pc(arn, allocated=10))
    (finding,) = _idle(handle_event(_config_event(arn), runtime=runtime))
    assert finding["fix"]["params"]["ProvisionedConcurrentExecutions"] == 1
    assert "average utilization 0%" in finding["message"]
    assert "$98.55/month" in finding["message"]  # 9 x 1 GB x 2,628,000 s x $0.0000041667


def test_the_provisioning_event_itself_is_too_recent_to_judge(aws, runtime, stub_only, event):
    arn = _live_alias(aws, "example-fn")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")
    _stub_configs(stub_only, runtime, arn, _pc(arn, allocated=25, status="IN_PROGRESS", last_modified=now))
    report = handle_event(event("lambda-PutProvisionedConcurrencyConfig"), runtime=runtime)
    assert report["skipped"] is None and _idle(report) == []


def test_where_the_configs_api_is_unavailable_it_says_so_and_proposes_nothing(aws, runtime):
    arn = _live_alias(aws, "example-fn")
    _usage(aws, "example-fn", utilization=0.12, peak=2)
    (finding,) = _idle(handle_event(_config_event(arn), runtime=runtime))  # moto: "Not yet implemented"
    assert finding["fix"] is None and finding["outcome"] == "reported"
    assert "unavailable: ListProvisionedConcurrencyConfigs is not supported here" in finding["message"]
    assert "average utilization 12%" in finding["message"]


def test_unavailable_and_no_metrics_means_no_finding(aws, runtime):
    arn = _live_alias(aws, "plain")
    report = handle_event(_config_event(arn), runtime=runtime)
    assert report["errors"] == [] and _idle(report) == []


def test_sweep_reads_configs_only_where_cloudwatch_shows_provisioned_concurrency(aws, runtime, stub_only, calls):
    arns = [_live_alias(aws, f"fn-{i}") for i in range(6)]
    _usage(aws, "fn-2", utilization=0.05, peak=1)
    stubber = _stub_configs(stub_only, runtime, arns[2], _pc(arns[2], allocated=8))
    calls.clear()
    report = runtime.engine("123456789012", "us-east-1").sweep()
    stubber.assert_no_pending_responses()  # exactly one ListProvisionedConcurrencyConfigs, for fn-2
    (decision,) = [d for d in report.decisions if d.finding.policy == "provisioned-idle"]
    assert decision.finding.function_arn == arns[2]
    assert decision.finding.fix.params["ProvisionedConcurrentExecutions"] == 2
    # one bulk look per metric: provisioned concurrency, and function URLs (read ahead for cold-start-latency)
    assert calls.calls.count("cloudwatch.ListMetrics") <= 2
    assert calls.calls.count("lambda.ListProvisionedConcurrencyConfigs") == 1
