"""provisioned-idle on moto. moto has no provisioned-concurrency API: List/PutProvisionedConcurrencyConfig are
stubbed (those calls only, botocore Stubber); the utilization metrics are real CloudWatch data in moto, and
Application Auto Scaling (scalable targets, target-tracking policies, scheduled actions) is moto's own."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from chalicelib.act import fixes
from chalicelib.act.gateway import Gateway
from chalicelib.bot.handlers import handle_event
from chalicelib.core.model import FixSpec
from safetycatch.local.cloudtrail import api_call

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


SCALING = {"action": "scale-provisioned-concurrency", "params": {
    "Qualifier": "live", "MinCapacity": 2, "MaxCapacity": 4, "TargetValue": 0.7,
    "PolicyName": "safetycatch-pc-utilization"},
    "prior": {"Qualifier": "live", "ProvisionedConcurrentExecutions": 20, "ScalableTarget": None}}


def test_idle_without_a_scaler_asks_to_track_utilization(aws, runtime, stub_only, calls):
    arn = _live_alias(aws, "example-fn")
    _usage(aws, "example-fn", utilization=0.1, peak=3)
    stubber = _stub_configs(stub_only, runtime, arn, _pc(arn))
    calls.clear()
    (finding,) = _idle(handle_event(_config_event(arn), runtime=runtime))
    stubber.assert_no_pending_responses()
    assert finding["outcome"] == "pending-approval" and finding["mode"] == "approve"
    assert finding["fix"] == {**SCALING, "target": arn}
    # one look for a scaler, on the flagged alias only (no policies / schedules to read without a target)
    assert [c for c in calls.calls if c.startswith("application-autoscaling")] == [
        "application-autoscaling.DescribeScalableTargets"]
    message = finding["message"]
    assert "average utilization 10% over 7 days, peak 3 in use) and no Application Auto Scaling manages it" in message
    # min: 10% of 20 in use on average -> 2; max: ceil(3 x 1.25) = 4; at 70% the scaler keeps ~3 of today's 20:
    # 17 slots x 0.5 GB x 730 h x 3600 s x $0.0000041667 = $93.08 a month (labelled estimate)
    assert ("register live as a scalable target (min 2, the average in use; max 4, the peak x 1.25) with target "
            "tracking at 70% ProvisionedConcurrencyUtilization - estimated saving $93.08/month at 512 MB "
            "(AWS list prices, us-east-1)") in message
    assert "Scheduled actions can raise the minimum for business hours" in message


def test_approved_scaling_registers_target_and_policy_and_undo_removes_them(aws, stub_only):
    from chalicelib.core.aws import Clients

    arn = _live_alias(aws, "example-fn")
    clients = Clients("us-east-1")
    scaling = clients("application-autoscaling")
    spec = FixSpec.from_json({**SCALING, "target": arn})
    gateway = Gateway(clients)
    fixes.apply(gateway, spec)
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="lambda")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == ("function:example-fn:live", 2, 4)
    (policy,) = scaling.describe_scaling_policies(ServiceNamespace="lambda")["ScalingPolicies"]
    assert policy["PolicyName"] == "safetycatch-pc-utilization" and policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 0.7, "PredefinedMetricSpecification": {
            "PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"}}

    # undo: the policy and the target go, and the prior value is put back (moto lacks the PC API: stubbed)
    stubber = stub_only(clients("lambda"), "PutProvisionedConcurrencyConfig")
    stubber.add_response("put_provisioned_concurrency_config", {"RequestedProvisionedConcurrentExecutions": 20,
                                                             "Status": "IN_PROGRESS"},
                         {"FunctionName": arn, "Qualifier": "live", "ProvisionedConcurrentExecutions": 20})
    fixes.undo(gateway, spec)
    stubber.assert_no_pending_responses()
    assert scaling.describe_scalable_targets(ServiceNamespace="lambda")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="lambda")["ScalingPolicies"] == []
    assert [w.operation for w in gateway.log] == ["RegisterScalableTarget", "PutScalingPolicy", "DeleteScalingPolicy",
                                                  "DeregisterScalableTarget", "PutProvisionedConcurrencyConfig"]
    needed = fixes.ACTIONS["scale-provisioned-concurrency"].permissions
    assert {"application-autoscaling:RegisterScalableTarget", "iam:CreateServiceLinkedRole",
            "cloudwatch:PutMetricAlarm", "lambda:PutProvisionedConcurrencyConfig"} <= set(needed)


def test_a_failed_policy_takes_the_registration_back(aws, stub_only):
    from chalicelib.core.aws import Clients

    arn = _live_alias(aws, "example-fn")
    clients = Clients("us-east-1")
    stubber = stub_only(clients("application-autoscaling"), "PutScalingPolicy")
    stubber.add_client_error("put_scaling_policy", "LimitExceededException", "too many policies")
    with pytest.raises(ClientError):
        fixes.apply(Gateway(clients), FixSpec.from_json({**SCALING, "target": arn}))
    assert clients("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="lambda")["ScalableTargets"] == []


def test_a_scaled_alias_is_never_lowered(aws, runtime, stub_only):
    arn = _live_alias(aws, "example-fn")
    _usage(aws, "example-fn", utilization=0.1, peak=3)
    scaling = aws.client("application-autoscaling")
    dimension = {"ServiceNamespace": "lambda", "ResourceId": "function:example-fn:live",
                 "ScalableDimension": "lambda:function:ProvisionedConcurrency"}
    scaling.register_scalable_target(**dimension, MinCapacity=20, MaxCapacity=50)
    tracking = {"TargetValue": 0.6,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"}}
    scaling.put_scaling_policy(**dimension, PolicyName="pc-utilization", PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration=tracking)
    scaling.put_scheduled_action(**dimension, ScheduledActionName="business-hours", Schedule="cron(0 8 ? * MON-FRI *)",
                                 ScalableTargetAction={"MinCapacity": 20, "MaxCapacity": 50})
    _stub_configs(stub_only, runtime, arn, _pc(arn))
    (finding,) = _idle(handle_event(_config_event(arn), runtime=runtime))
    assert finding["fix"] is None and finding["outcome"] == "reported"  # no Slack here: nothing delivered
    assert ("but Application Auto Scaling manages it (min 20, max 50; target tracking at 60% (pc-utilization); "
            "scheduled: business-hours cron(0 8 ? * MON-FRI *)): lowering the value would fight the scaler"
            ) in finding["message"]
    assert "a lower MinCapacity or scheduled minimum, or a higher target value" in finding["message"]


def test_dry_run_gateway_makes_no_call(aws, calls):
    from chalicelib.core.aws import Clients

    clients = Clients("us-east-1")
    calls.watch(clients.session)
    spec = FixSpec.from_json({**SCALING, "target": "arn:aws:lambda:us-east-1:123456789012:function:f"})
    gateway = Gateway(clients, dry_run=True)
    fixes.apply(gateway, spec)
    assert [w.operation for w in gateway.log] == ["RegisterScalableTarget", "PutScalingPolicy"]
    assert calls.calls == [], "dry-run records the writes and calls nothing"
    fixes.apply(Gateway(clients), spec)  # the same clients, live: the recorder sees every call they make
    assert calls.calls == ["application-autoscaling.RegisterScalableTarget", "application-autoscaling.PutScalingPolicy"]
    calls.clear()
    # the older fixed-value action still undoes fixes stored before (never below 1)
    fixes.apply(gateway, FixSpec("set-provisioned-concurrency", "arn:aws:lambda:us-east-1:123456789012:function:f",
                                 {"Qualifier": "live", "ProvisionedConcurrentExecutions": 0},
                                 {"Qualifier": "live", "ProvisionedConcurrentExecutions": 5}))
    assert gateway.log[-1].params["ProvisionedConcurrentExecutions"] == 1


@pytest.mark.parametrize("utilization, peak, config, expected", [
    (0.8, 19, {}, None),                                   # well used
    (0.5, 12, {}, None),                                   # at the threshold
    (0.3, 18, {}, "capped at today's 20"),                 # average low, peak needs all 20: max stays 20
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
        assert expected in finding["message"] and finding["outcome"] == "pending-approval"
        assert (finding["fix"]["params"]["MinCapacity"], finding["fix"]["params"]["MaxCapacity"]) == (6, 20)


def test_never_used_for_the_whole_lookback_goes_down_to_one(aws, runtime, stub_only):
    arn = _live_alias(aws, "example-fn", memory=1024)
    _stub_configs(stub_only, runtime, arn, _pc(arn, allocated=10))
    (finding,) = _idle(handle_event(_config_event(arn), runtime=runtime))
    assert (finding["fix"]["params"]["MinCapacity"], finding["fix"]["params"]["MaxCapacity"]) == (1, 1)
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
    assert decision.finding.fix.params["MaxCapacity"] == 2  # ceil(peak 1 x 1.25)
    # one bulk look per metric: provisioned concurrency, and function URLs (read ahead for cold-start-latency)
    assert calls.calls.count("cloudwatch.ListMetrics") <= 2
    assert calls.calls.count("lambda.ListProvisionedConcurrencyConfigs") == 1
    assert calls.calls.count("application-autoscaling.DescribeScalableTargets") == 1  # the flagged function only


def test_a_sweep_reads_scalers_once_for_every_flagged_function(aws, runtime, stub_only, calls):
    arns = [_live_alias(aws, f"fn-{i}") for i in range(4)]
    stubber = stub_only(runtime.clients()("lambda"), LIST)
    for i in (1, 3):
        _usage(aws, f"fn-{i}", utilization=0.05, peak=1)
        stubber.add_response("list_provisioned_concurrency_configs",
                             {"ProvisionedConcurrencyConfigs": [_pc(arns[i], allocated=8)]}, {"FunctionName": arns[i]})
    aws.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="lambda", ResourceId="function:fn-3:live",
        ScalableDimension="lambda:function:ProvisionedConcurrency", MinCapacity=8, MaxCapacity=8)
    calls.clear()
    report = runtime.engine("123456789012", "us-east-1").sweep()
    found = {d.finding.function_arn: d.finding for d in report.decisions if d.finding.policy == "provisioned-idle"}
    assert found[arns[1]].fix is not None and found[arns[3]].fix is None  # fn-3 belongs to its scaler
    scaling = [c for c in calls.calls if c.startswith("application-autoscaling")]
    assert sorted(scaling) == ["application-autoscaling.DescribeScalableTargets",
                               "application-autoscaling.DescribeScalingPolicies",
                               "application-autoscaling.DescribeScheduledActions"]  # the namespace, once


def test_a_scaler_registered_after_the_request_stops_the_approved_change(aws, runtime, stub_only):
    from chalicelib.people import decisions

    arn = _live_alias(aws, "example-fn")
    _usage(aws, "example-fn", utilization=0.1, peak=3)
    stubber = stub_only(runtime.clients()("lambda"), LIST)
    for _ in range(2):  # the request, then the re-evaluation on Approve
        stubber.add_response("list_provisioned_concurrency_configs", {"ProvisionedConcurrencyConfigs": [_pc(arn)]},
                             {"FunctionName": arn})
    (finding,) = _idle(handle_event(_config_event(arn), runtime=runtime))
    # meanwhile someone else puts Application Auto Scaling on the alias
    aws.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="lambda", ResourceId="function:example-fn:live",
        ScalableDimension="lambda:function:ProvisionedConcurrency", MinCapacity=10, MaxCapacity=30)
    outcome = decisions.decide(runtime, "approve", finding["approval_id"], "U0APPROVER")
    assert outcome.status == "FAILED" and "finds nothing to fix now" in outcome.text
    (target,) = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="lambda")["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (10, 30)  # the scaler's values, untouched
    assert aws.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="lambda")["ScalingPolicies"] == []
