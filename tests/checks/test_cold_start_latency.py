"""cold-start-latency on moto: API-fronted (REST, HTTP API, function URL), no provisioned concurrency, heavy
start. ListProvisionedConcurrencyConfigs is stubbed (moto lacks it) only where a test needs it to answer."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.checks.cold_start_latency import evaluate
from chalicelib.core.model import AccountFacts, ApiRoute, FunctionRef, FunctionSnapshot
from chalicelib.inventory import snapshot_from_config
from safetycatch.local.cloudtrail import api_call

PARAMS = {"max_memory_mb": 256, "min_package_mb": 20, "suggested_pc": 2}


def _config_event(arn):
    return api_call("UpdateFunctionConfiguration20150331v2", {"functionName": arn, "memorySize": 128,
                                                              "environment": {}},
                    {"functionName": arn.rsplit(":", 1)[-1], "functionArn": arn, "memorySize": 128})


def _cold(findings):
    return [f for f in findings if f["policy"] == "cold-start-latency"]


def test_rest_api_function_at_128_mb_fires_with_a_priced_suggestion(aws, runtime):
    arn = aws.function("signup-api", memory=128)
    aws.rest_api(arn, path="signup", method="POST", name="web")
    (finding,) = _cold(handle_event(_config_event(arn), runtime=runtime)["findings"])
    assert finding["outcome"] == "reported" and finding["fix"] is None and finding["severity"] == "low"
    message = finding["message"]
    # the API by its name, as the sweep names it (issue 25): not its id
    assert message.startswith("Serves REST API web (POST /signup) with no provisioned concurrency")
    assert "only 128 MB of memory, so little CPU for init" in message
    # 2 slots x 0.125 GB x 730 h x 3600 s x $0.0000041667 = $2.74 a month
    assert "keep 2 environments warm with provisioned concurrency on an alias - estimated $2.74/month" in message
    assert "unavailable: ListProvisionedConcurrencyConfigs is not supported here" in message  # moto lacks it


def test_http_api_route_counts_too(aws, runtime):
    arn = aws.function("search-api", memory=256)
    aws.http_api(arn, route="GET /search")
    (finding,) = _cold(handle_event(_config_event(arn), runtime=runtime)["findings"])
    assert "HTTP API" in finding["message"] and "(GET /search)" in finding["message"]


def test_a_new_function_url_is_an_api_front(aws, runtime):
    arn = aws.function("webhook", memory=128)
    url = aws.function_url("webhook")
    event = api_call("CreateFunctionUrlConfig20211031", {"functionName": "webhook", "authType": "NONE"},
                     {"functionArn": arn, "functionUrl": url, "authType": "NONE"})
    (finding,) = _cold(handle_event(event, runtime=runtime)["findings"])
    assert finding["message"].startswith("Serves its function URL with no provisioned concurrency")


def test_provisioned_concurrency_on_an_alias_means_no_finding(aws, runtime, stub_only):
    arn = aws.function("signup-api", memory=128)
    aws.rest_api(arn, path="signup")
    stubber = stub_only(runtime.clients()("lambda"), "ListProvisionedConcurrencyConfigs")
    stubber.add_response("list_provisioned_concurrency_configs", {"ProvisionedConcurrencyConfigs": [{
        "FunctionArn": f"{arn}:live", "RequestedProvisionedConcurrentExecutions": 2,
        "AllocatedProvisionedConcurrentExecutions": 2, "Status": "READY",
        "LastModified": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")}]}, {"FunctionName": arn})
    assert _cold(handle_event(_config_event(arn), runtime=runtime)["findings"]) == []
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("memory, fronted", [(1024, True), (128, False)])
def test_light_or_unfronted_functions_are_fine(aws, runtime, memory, fronted):
    arn = aws.function("svc", memory=memory)
    if fronted:
        aws.rest_api(arn, path="svc")
    assert _cold(handle_event(_config_event(arn), runtime=runtime)["findings"]) == []


def test_a_big_package_is_a_heavy_start_at_any_memory():
    fn = FunctionSnapshot(FunctionRef("ml", "123456789012", "us-east-1"), memory_mb=3008, code_size=30 * 1024 * 1024,
                          routes=(ApiRoute("rest", "a1", "ml", "POST /score", "AWS_PROXY", 29000),))
    (finding,) = evaluate(fn, PARAMS, AccountFacts())
    assert "a 30.0 MB package" in finding.message and "MB of memory" not in finding.message
    # 2 x 2.9375 GB x 2,628,000 s x $0.0000041667 = $64.33
    assert finding.evidence["estimated_monthly_pc_usd"] == 64.33


def test_sweep_finds_urls_that_serve_requests_in_bulk(aws, runtime, calls):
    for name in ("quiet-url", "busy-url", "no-url"):
        aws.function(name, memory=128)
    aws.function_url("quiet-url")
    aws.function_url("busy-url")
    aws.metric_history("busy-url", "UrlRequestCount", 12, unit="Count")
    calls.clear()
    report = runtime.engine("123456789012", "us-east-1").sweep()
    flagged = [d.finding.function_arn.rsplit(":", 1)[-1] for d in report.decisions
               if d.finding.policy == "cold-start-latency"]
    assert flagged == ["busy-url"]  # a URL nobody calls has no one waiting on a cold start
    assert not any("FunctionUrl" in call for call in calls.calls)  # no per-function URL reads in a sweep


# -- SnapStart: the cheaper cure first, where the runtime supports it -----------------------------------------


def _fronted(aws, name, runtime_name, **extra):
    response = aws.client("lambda").create_function(
        FunctionName=name, Runtime=runtime_name, Role=aws.role, Handler="app.handler", Code={"ZipFile": aws._zip},
        MemorySize=128, **extra)
    aws.rest_api(response["FunctionArn"], path=name)
    return response["FunctionArn"]


def test_python_312_gets_snapstart_first_priced_against_provisioned_concurrency(aws, runtime):
    arn = _fronted(aws, "signup-api", "python3.12")
    (finding,) = _cold(handle_event(_config_event(arn), runtime=runtime)["findings"])
    message = finding["message"]
    # 0.125 GB x 2,628,000 s x $0.0000015046 = $0.49 a month of cache; 1,000 x 0.125 GB x $0.0001397998 = $0.02
    assert ("Cheaper first: turn on SnapStart (the python3.12 runtime supports it) - new environments resume from "
            "a snapshot taken when a version is published, for an estimated $0.49/month of snapshot cache per "
            "published version plus $0.02 per 1,000 restores, against $2.74/month for provisioned concurrency"
            ) in message
    assert "not with provisioned concurrency, EFS or ephemeral storage over 512 MB" in message
    assert message.index("SnapStart") < message.index("keep 2 environments warm")
    assert finding["fix"] is None


def test_java_snapstart_costs_nothing_extra(aws, runtime):
    arn = _fronted(aws, "quote-api", "java21")
    (finding,) = _cold(handle_event(_config_event(arn), runtime=runtime)["findings"])
    assert "turn on SnapStart (the java21 runtime supports it)" in finding["message"]
    assert "at no extra charge for Java" in finding["message"]


@pytest.mark.parametrize("runtime_name", ["python3.11", "nodejs20.x", "java8.al2", "ruby3.3"])
def test_runtimes_without_snapstart_hear_nothing_of_it(aws, runtime, runtime_name):
    arn = _fronted(aws, "legacy-api", runtime_name)
    (finding,) = _cold(handle_event(_config_event(arn), runtime=runtime)["findings"])
    assert "SnapStart" not in finding["message"]
    assert "keep 2 environments warm with provisioned concurrency" in finding["message"]


def test_snapstart_already_on_is_quiet():
    # moto always answers SnapStart.ApplyOn "None"; this is the configuration AWS returns once it is on
    config = {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:signup-api", "Runtime": "python3.13",
              "MemorySize": 128, "SnapStart": {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}}
    fn = snapshot_from_config(config)
    fn.routes = (ApiRoute("rest", "a1", "web", "POST /signup", "AWS_PROXY", 29000),)
    assert fn.snapstart == "PublishedVersions" and evaluate(fn, PARAMS, AccountFacts()) == []
    fn.snapstart = "None"
    assert "turn on SnapStart" in evaluate(fn, PARAMS, AccountFacts())[0].message


def test_an_incompatible_function_is_told_why_not(aws, runtime):
    arn = _fronted(aws, "export-api", "python3.12", EphemeralStorage={"Size": 2048})
    (finding,) = _cold(handle_event(_config_event(arn), runtime=runtime)["findings"])
    assert ("SnapStart would suit the python3.12 runtime, but its ephemeral storage is 2048 MB (SnapStart allows "
            "up to 512 MB).") in finding["message"]
    assert "turn on SnapStart" not in finding["message"]


def test_efs_and_unsupported_regions_block_snapstart():
    config = {"FunctionArn": "arn:aws:lambda:ap-east-2:123456789012:function:f", "Runtime": "dotnet8",
              "MemorySize": 128, "FileSystemConfigs": [{"Arn": "arn:aws:elasticfilesystem:ap-east-2:123456789012:"
                                                        "access-point/fsap-1", "LocalMountPath": "/mnt/data"}]}
    fn = snapshot_from_config(config)
    fn.routes = (ApiRoute("http", "a1", "web", "GET /", "AWS_PROXY", 30000),)
    (finding,) = evaluate(fn, PARAMS, AccountFacts())
    assert finding.evidence["snapstart"] == {"eligible": False, "blockers": [
        "it mounts an Amazon EFS file system", "SnapStart is not offered in ap-east-2"]}


# -- SnapStart on, but an API invokes $LATEST (issue 23.9) ---------------------------------------------------------


def test_snapstart_on_latest_says_the_api_still_pays_full_cold_starts():
    config = {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:signup-api", "Runtime": "python3.13",
              "MemorySize": 1024, "SnapStart": {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}}
    fn = snapshot_from_config(config)
    fn.routes = (ApiRoute("rest", "a1", "web", "POST /signup", "AWS_PROXY", 29000, qualifier=""),
                 ApiRoute("http", "h2", "web2", "GET /", "AWS_PROXY", 30000, qualifier="live"))
    (finding,) = evaluate(fn, PARAMS, AccountFacts())
    assert finding.message.startswith("SnapStart is on, but REST API web POST /signup invokes the unqualified "
                                      "function ($LATEST), which SnapStart never covers")
    assert finding.evidence["snapstart"] == {"on": True, "unqualified_routes": ["a1 POST /signup"]}
    fn.routes = fn.routes[1:]  # every API on an alias: SnapStart covers it, nothing to say
    assert evaluate(fn, PARAMS, AccountFacts()) == []


def test_the_inventory_reads_which_qualifier_an_integration_invokes(aws, runtime):
    """Read from the API as deployed (moto): an integration on :live is qualified, one on the bare ARN is not."""
    lam = aws.client("lambda")
    arn = aws.function("quotes-api", memory=1024)
    lam.create_alias(FunctionName="quotes-api", Name="live", FunctionVersion=lam.publish_version(
        FunctionName="quotes-api")["Version"])
    aws.rest_api(arn, path="bare")
    aws.rest_api(f"{arn}:live", path="aliased", grant=False)
    lam.add_permission(FunctionName="quotes-api", Qualifier="live", StatementId="apigw-live",
                       Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com")
    inventory = runtime.engine("123456789012", "us-east-1").inventory
    snapshot = inventory.function(FunctionRef("quotes-api", "123456789012", "us-east-1"))
    assert snapshot is not None
    inventory.load({"routes": [snapshot]}, {})
    assert sorted((r.route, r.qualifier) for r in snapshot.routes) == [("GET /aliased", "live"), ("GET /bare", "")]
