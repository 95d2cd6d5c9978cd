"""API Gateway integrations however they are written, heard on the event path: stage variables (every stage),
OpenAPI imports and puts, HTTP API quick create, a moved route, and APIs that invoke through an invocation role."""

from __future__ import annotations

import json

import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.store.state import InvokerIndex
from safetycatch.local.cloudtrail import api_call
from tests.world import apigw_world as world

ACCOUNT, REGION = "123456789012", "us-east-1"


def _fn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _grant(aws, function: str, api_id: str) -> None:
    aws.client("lambda").add_permission(FunctionName=function, StatementId=f"apigw-{api_id}",
                                        Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                                        SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*")


def _rest_integration(aws, uri: str, credentials: str = "", name: str = "orders",
                      timeout_ms: int | None = None) -> tuple[str, str]:
    """A REST API with ``GET /orders`` → ``uri`` (AWS_PROXY); returns (api id, resource id)."""
    api = aws.client("apigateway")
    api_id = api.create_rest_api(name=name)["id"]
    root = api.get_resources(restApiId=api_id)["items"][0]["id"]
    resource = api.create_resource(restApiId=api_id, parentId=root, pathPart="orders")["id"]
    api.put_method(restApiId=api_id, resourceId=resource, httpMethod="GET", authorizationType="NONE")
    extra: dict = {"credentials": credentials} if credentials else {}
    extra |= {"timeoutInMillis": timeout_ms} if timeout_ms else {}
    api.put_integration(restApiId=api_id, resourceId=resource, httpMethod="GET", type="AWS_PROXY",
                        integrationHttpMethod="POST", uri=uri, **extra)
    return api_id, resource


def _put_integration_event(api_id: str, resource: str, uri: str, credentials: str = "") -> dict:
    """PutIntegration as CloudTrail records it (tests/events/apigateway-PutIntegration.json's shape)."""
    body = {"type": "AWS_PROXY", "httpMethod": "POST", "uri": uri, **({"credentials": credentials} if credentials
                                                                      else {})}
    return api_call("PutIntegration", {"restApiId": api_id, "resourceId": resource, "httpMethod": "GET",
                                       "putIntegrationInput": body, "template": False},
                    {"type": "AWS_PROXY", "uri": uri, "timeoutInMillis": 29000}, service="apigateway")


def _timeouts(aws, *names: str) -> list[int]:
    return [aws.client("lambda").get_function(FunctionName=n)["Configuration"]["Timeout"] for n in names]


# -- stage variables ----------------------------------------------------------------------------------------


def test_an_alias_per_stage_integration_is_resolved_through_every_stage(aws, runtime):
    arn = aws.function("orders-api", timeout=30)
    version = aws.client("lambda").publish_version(FunctionName="orders-api")["Version"]
    aws.client("lambda").create_alias(FunctionName="orders-api", Name="live", FunctionVersion=version)
    uri = world.invocation_uri(arn + ":${stageVariables.alias}")
    api_id, resource = _rest_integration(aws, uri)
    aws.client("apigateway").create_deployment(restApiId=api_id, stageName="prod", variables={"alias": "live"})
    _grant(aws, arn + ":live", api_id)
    report = handle_event(_put_integration_event(api_id, resource, uri), runtime=runtime)
    assert report["skipped"] is None, report["skipped"]
    assert report["functions"] == [arn]
    (finding,) = [f for f in report["findings"] if f["policy"] == "apigw-timeout"]
    assert finding["outcome"] == "fixed" and "stage prod" in finding["message"]
    assert _timeouts(aws, "orders-api") == [25]


def test_a_function_named_by_a_stage_variable_is_evaluated_for_each_stage_value(aws, runtime):
    prod, beta = aws.function("orders-prod", timeout=30), aws.function("orders-beta", timeout=40)
    uri = world.invocation_uri(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:${{stageVariables.fn}}")
    api_id, resource = _rest_integration(aws, uri)
    gateway = aws.client("apigateway")
    gateway.create_deployment(restApiId=api_id, stageName="prod", variables={"fn": "orders-prod"})
    gateway.create_deployment(restApiId=api_id, stageName="beta", variables={"fn": "orders-beta"})
    for function in (prod, beta):
        _grant(aws, function, api_id)
    report = handle_event(_put_integration_event(api_id, resource, uri), runtime=runtime)
    assert report["skipped"] is None, report["skipped"]
    assert sorted(report["functions"]) == sorted([prod, beta])
    assert sorted(f["function"] for f in report["findings"] if f["policy"] == "apigw-timeout") == sorted([prod, beta])
    assert _timeouts(aws, "orders-prod", "orders-beta") == [25, 25]


def test_a_timeout_change_of_a_function_behind_a_stage_variable_is_heard(aws, runtime):
    arn = aws.function("orders-prod", timeout=10)
    uri = world.invocation_uri(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:${{stageVariables.fn}}")
    api_id, _ = _rest_integration(aws, uri)
    aws.client("apigateway").create_deployment(restApiId=api_id, stageName="prod", variables={"fn": "orders-prod"})
    _grant(aws, arn, api_id)
    aws.client("lambda").update_function_configuration(FunctionName="orders-prod", Timeout=60)
    report = handle_event(api_call("UpdateFunctionConfiguration20150331v2",
                                   {"functionName": "orders-prod", "timeout": 60}), runtime=runtime)
    assert [(f["policy"], f["outcome"]) for f in report["findings"]] == [("apigw-timeout", "fixed")]


# -- whole APIs: OpenAPI imports and puts, quick create, a moved route ---------------------------------------


def test_import_rest_api_re_evaluates_every_lambda_integration_of_the_api(aws, runtime):
    orders, items = aws.function("orders-api", timeout=30), aws.function("items-api", timeout=60)
    spec = world.openapi("shop", {"GET /orders": orders, "POST /items": items})
    api_id = aws.client("apigateway").import_rest_api(body=world.body(spec))["id"]
    for function in (orders, items):
        _grant(aws, function, api_id)
    event = api_call("ImportRestApi", {"failOnWarnings": False,
                                       "parameters": {"endpointConfigurationTypes": "REGIONAL"}},
                     {"id": api_id, "name": "shop", "apiKeySource": "HEADER", "disableExecuteApiEndpoint": False},
                     service="apigateway")
    report = handle_event(event, runtime=runtime)
    assert report["skipped"] is None, report["skipped"]
    assert sorted(report["functions"]) == sorted([orders, items])
    assert {f["function"] for f in report["findings"] if f["outcome"] == "fixed"} == {orders, items}
    assert _timeouts(aws, "orders-api", "items-api") == [25, 25]


def test_put_rest_api_overwriting_an_api_re_evaluates_the_function_it_now_targets(aws, runtime):
    old, new = aws.function("orders-v1", timeout=10), aws.function("orders-v2", timeout=45)
    gateway = aws.client("apigateway")
    api_id = gateway.import_rest_api(body=world.body(world.openapi("orders", {"GET /orders": old})))["id"]
    gateway.put_rest_api(restApiId=api_id, mode="overwrite",
                         body=world.body(world.openapi("orders", {"GET /orders": new})))
    _grant(aws, new, api_id)
    report = handle_event(api_call("PutRestApi", {"restApiId": api_id, "mode": "overwrite", "failOnWarnings": False},
                                   {"id": api_id, "name": "orders"}, service="apigateway"), runtime=runtime)
    assert report["functions"] == [new]
    assert [(f["policy"], f["outcome"]) for f in report["findings"] if f["policy"] == "apigw-timeout"] == [
        ("apigw-timeout", "fixed")]


def test_http_import_and_reimport_re_evaluate_the_api(aws, runtime):
    first, second = aws.function("orders-http", timeout=20), aws.function("orders-next", timeout=35)
    v2 = aws.client("apigatewayv2")
    api_id = world.import_http_api(v2, world.openapi("orders", {"POST /orders": first}, http=True))
    _grant(aws, first, api_id)
    imported = handle_event(api_call("ImportApi", {"failOnWarnings": False}, {"apiId": api_id, "name": "orders",
                                                                              "protocolType": "HTTP"},
                                     service="apigateway"), runtime=runtime)
    assert imported["functions"] == [first] and imported["skipped"] is None
    assert not [f for f in imported["findings"] if f["policy"] == "apigw-timeout"], "20 s is within 30 s - margin"
    world.import_http_api(v2, world.openapi("orders", {"POST /orders": second}, http=True), api_id=api_id)
    _grant(aws, second, api_id)
    reimported = handle_event(api_call("ReimportApi", {"apiId": api_id, "failOnWarnings": False},
                                       {"apiId": api_id, "name": "orders", "protocolType": "HTTP"},
                                       service="apigateway"), runtime=runtime)
    assert reimported["functions"] == [second]
    assert [f["outcome"] for f in reimported["findings"] if f["policy"] == "apigw-timeout"] == ["fixed"]


def test_http_api_quick_create_with_a_target_is_heard(aws, runtime):
    arn = aws.function("quick", timeout=40)
    api_id = world.quick_create(aws.client("apigatewayv2"), "quick", arn)
    _grant(aws, arn, api_id)
    event = api_call("CreateApi", {"name": "quick", "protocolType": "HTTP", "target": arn},
                     {"apiId": api_id, "apiEndpoint": f"https://{api_id}.execute-api.{REGION}.amazonaws.com",
                      "name": "quick", "protocolType": "HTTP", "routeSelectionExpression": "${request.method} "
                      "${request.path}"}, service="apigateway")
    report = handle_event(event, runtime=runtime)
    assert report["functions"] == [arn]
    assert [f["outcome"] for f in report["findings"] if f["policy"] == "apigw-timeout"] == ["fixed"]


def test_update_route_to_another_integration_re_evaluates_the_api(aws, runtime):
    calm, slow = aws.function("calm", timeout=5), aws.function("slow", timeout=50)
    v2 = aws.client("apigatewayv2")
    api_id = aws.http_api(calm, route="POST /orders")
    moved = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=slow,
                                  PayloadFormatVersion="2.0")["IntegrationId"]
    (route,) = v2.get_routes(ApiId=api_id)["Items"]
    v2.update_route(ApiId=api_id, RouteId=route["RouteId"], Target=f"integrations/{moved}")
    _grant(aws, slow, api_id)
    report = handle_event(api_call("UpdateRoute", {"apiId": api_id, "routeId": route["RouteId"],
                                                   "target": f"integrations/{moved}"},
                                   {"apiKeyRequired": False, "routeId": route["RouteId"], "routeKey": "POST /orders",
                                    "target": f"integrations/{moved}"}, service="apigateway"), runtime=runtime)
    assert slow in report["functions"]
    assert [(f["function"], f["outcome"]) for f in report["findings"] if f["policy"] == "apigw-timeout"] == [
        (slow, "fixed")]


# -- invocation roles ---------------------------------------------------------------------------------------


def _invocation_role(aws) -> str:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "apigateway.amazonaws.com"}}]}
    return str(aws.client("iam").create_role(RoleName="api-invoker",
                                             AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def test_an_api_invoking_through_an_invocation_role_is_found_from_a_function_change(aws, runtime):
    """No resource-policy permission: the integration's credentials invoke the function. The sweep has always
    found such an API (it reads every API); the event path now does too."""
    arn = aws.function("orders-api", timeout=10)
    _rest_integration(aws, world.invocation_uri(arn), credentials=_invocation_role(aws))
    assert aws.client("lambda").get_function(FunctionName="orders-api").get("Policy") is None
    aws.client("lambda").update_function_configuration(FunctionName="orders-api", Timeout=30)
    report = handle_event(api_call("UpdateFunctionConfiguration20150331v2",
                                   {"functionName": "orders-api", "timeout": 30}), runtime=runtime)
    assert [(f["policy"], f["outcome"]) for f in report["findings"]] == [("apigw-timeout", "fixed")]
    sweep = runtime.engine(ACCOUNT, REGION).sweep(act=False)
    assert not [d for d in sweep.decisions if d.finding.policy == "apigw-timeout"], "fixed: the sweep agrees"


def test_a_function_no_api_may_invoke_reads_no_routes_on_its_event_in_a_region_of_many_apis(aws, runtime, calls):
    """Looking behind invocation roles reads every API's routes (GetResources: 5 requests per 2 s per account,
    shared with the customer's deploys); one event of a function no API has permission for does it only in a
    region of at most EVENT_PATH_MAX_APIS APIs: beyond it the event lists the APIs and reads no route."""
    from chalicelib.inventory.apis import EVENT_PATH_MAX_APIS

    aws.function("worker", timeout=10)
    for i in range(EVENT_PATH_MAX_APIS + 1):
        aws.client("apigateway").create_rest_api(name=f"api-{i}")
    aws.client("lambda").update_function_configuration(FunctionName="worker", Timeout=30)
    calls.clear()
    handle_event(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "worker", "timeout": 30}),
                 runtime=runtime)
    reads = [c for c in calls.calls if c.startswith("apigateway")]
    assert "apigateway.GetRestApis" in reads and "apigateway.GetResources" not in reads, reads


def test_an_integration_with_credentials_is_heard_from_its_put_integration(aws, runtime):
    arn = aws.function("orders-api", timeout=30)
    role = _invocation_role(aws)
    uri = world.invocation_uri(arn)
    api_id, resource = _rest_integration(aws, uri, credentials=role)
    report = handle_event(_put_integration_event(api_id, resource, uri, credentials=role), runtime=runtime)
    assert [f["outcome"] for f in report["findings"] if f["policy"] == "apigw-timeout"] == ["fixed"]


# -- the invoker index: the APIs that invoke a function through a role, kept in the state table ---------------

ROLE_READS = ("apigateway.GetResources", "apigateway.GetRestApi", "apigateway.GetRestApis", "apigatewayv2.GetApis",
              "apigatewayv2.GetApi", "apigatewayv2.GetIntegrations", "apigatewayv2.GetRoutes")


def _many_apis(aws, count: int) -> None:
    """``count`` REST APIs that invoke other functions (with permissions), as a busy region has."""
    for i in range(count):
        aws.rest_api(aws.function(f"other-{i}", timeout=5), path=f"p{i}", name=f"api-{i}")


def _sweep(runtime) -> None:
    """The scheduled sweep (acting) on the same state table, from a runtime whose calls are not recorded (its
    read-ahead of facets no function needed may still run when it returns)."""
    from chalicelib.bot.runtime import Runtime
    from tests.conftest import POLICIES

    sweeper = Runtime.from_env(str(POLICIES), mode="enforce", region=REGION)
    sweeper.account, sweeper._store = ACCOUNT, runtime.store
    sweeper.engine(ACCOUNT, REGION).sweep(act=True)


def _timeout_change(runtime, name: str, timeout: int) -> dict:
    return handle_event(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": name, "timeout": timeout}),
                        runtime=runtime)


def _api_reads(calls) -> list[str]:
    return sorted(c for c in calls.calls if c.startswith("apigateway"))


def test_the_sweep_indexes_role_invoked_apis_and_an_event_reads_exactly_them_in_a_region_of_many_apis(
        aws, runtime, calls):
    """Beyond EVENT_PATH_MAX_APIS: after a sweep, the function's event reads its role-invoking API and no other,
    and finds the footgun there (before the index it read no route at all in such a region)."""
    from chalicelib.inventory.apis import EVENT_PATH_MAX_APIS

    _many_apis(aws, EVENT_PATH_MAX_APIS + 2)
    arn = aws.function("worker", timeout=10)
    api_id, _ = _rest_integration(aws, world.invocation_uri(arn), credentials=_invocation_role(aws), name="jobs")
    _sweep(runtime)
    assert InvokerIndex(runtime.store.table).apis_for(arn) == [("rest", api_id)]
    aws.client("lambda").update_function_configuration(FunctionName="worker", Timeout=30)
    calls.clear()
    report = _timeout_change(runtime, "worker", 30)
    assert [(f["policy"], f["outcome"]) for f in report["findings"]] == [("apigw-timeout", "fixed")]
    # exactly its API: its routes (GetResources) and its name (GetRestApi); no listing, no other API
    assert _api_reads(calls) == ["apigateway.GetResources", "apigateway.GetRestApi"], calls.calls


@pytest.mark.parametrize("functions, apis", [(3, 12), (30, 40)])
def test_a_timeout_change_costs_the_same_fixed_calls_whatever_the_region_size(aws, runtime, calls, functions, apis):
    """A function no API invokes, in an indexed region: GetFunction and GetPolicy, and no API Gateway read, in a
    region of 12 APIs as in one of 40 (the event path never lists functions, so their number does not count)."""
    _many_apis(aws, apis)
    for i in range(functions):
        aws.function(f"idle-{i}", timeout=10)
    _sweep(runtime)
    aws.client("lambda").update_function_configuration(FunctionName="idle-0", Timeout=30)
    calls.clear()
    report = _timeout_change(runtime, "idle-0", 30)
    assert report["skipped"] is None and report["findings"] == []
    assert sorted(calls.calls) == ["lambda.GetFunction", "lambda.GetPolicy"], calls.calls


def test_a_function_with_a_permission_and_a_role_invoked_api_is_judged_by_both(aws, runtime, calls):
    """The gap: one API has a resource-policy permission (29 s), another invokes through a role with a 10 s
    integration timeout. The event path used to read only the first and pass a 20 s function."""
    arn = aws.function("orders-api", timeout=10)
    granted = aws.rest_api(arn, path="orders", name="public")
    role_api, _ = _rest_integration(aws, world.invocation_uri(arn), credentials=_invocation_role(aws),
                                    name="internal", timeout_ms=10000)
    _sweep(runtime)
    aws.client("lambda").update_function_configuration(FunctionName="orders-api", Timeout=20)
    calls.clear()
    report = _timeout_change(runtime, "orders-api", 20)
    (finding,) = [f for f in report["findings"] if f["policy"] == "apigw-timeout"]
    assert finding["outcome"] == "fixed" and "internal" in finding["message"], finding
    assert _timeouts(aws, "orders-api")[0] < 10
    resources = [c for c in calls.calls if c == "apigateway.GetResources"]
    assert len(resources) == 2 and "apigateway.GetRestApis" not in calls.calls, calls.calls  # the two, no listing
    assert granted != role_api


def test_a_put_integration_giving_a_role_is_indexed_and_heard_from_the_function_in_a_region_of_many_apis(
        aws, runtime, calls):
    """The integration event names the API: it is read and indexed, so the function's next change finds it."""
    from chalicelib.inventory.apis import EVENT_PATH_MAX_APIS

    _many_apis(aws, EVENT_PATH_MAX_APIS + 1)
    _sweep(runtime)  # built before the role-invoked API exists
    arn = aws.function("orders-api", timeout=20)
    role = _invocation_role(aws)
    uri = world.invocation_uri(arn)
    api_id, resource = _rest_integration(aws, uri, credentials=role)
    report = handle_event(_put_integration_event(api_id, resource, uri, credentials=role), runtime=runtime)
    assert report["skipped"] is None and report["findings"] == [], "20 s is within 29 s - margin"
    aws.client("lambda").update_function_configuration(FunctionName="orders-api", Timeout=40)
    calls.clear()
    report = _timeout_change(runtime, "orders-api", 40)
    assert [(f["policy"], f["outcome"]) for f in report["findings"]] == [("apigw-timeout", "fixed")]
    assert "apigateway.GetRestApis" not in calls.calls


def test_an_api_that_drops_the_role_or_is_deleted_leaves_the_index(aws, runtime, calls):
    """Each read of an API keeps the index true: an integration event that removes the credentials forgets the
    function, one that adds them records it; a whole-API event (PutRestApi) forgets the functions the API no longer
    invokes through a role; an indexed API that is gone (NotFound) is forgotten on the function's next event."""
    orders, other = aws.function("orders-api", timeout=10), aws.function("other-api", timeout=10)
    role = _invocation_role(aws)
    api_id, resource = _rest_integration(aws, world.invocation_uri(orders), credentials=role)
    _sweep(runtime)
    index = InvokerIndex(runtime.store.table)
    assert index.apis_for(orders) == [("rest", api_id)]

    def put(function: str, credentials: str, event: str = "PutIntegration") -> None:
        uri = world.invocation_uri(function)
        extra = {"credentials": credentials} if credentials else {}
        aws.client("apigateway").put_integration(restApiId=api_id, resourceId=resource, httpMethod="GET",
                                                 type="AWS_PROXY", integrationHttpMethod="POST", uri=uri, **extra)
        handle_event(_put_integration_event(api_id, resource, uri, credentials) if event == "PutIntegration" else
                     api_call("PutRestApi", {"restApiId": api_id, "mode": "overwrite", "failOnWarnings": False},
                              {"id": api_id, "name": "orders"}, service="apigateway"), runtime=runtime)

    put(orders, "")
    assert index.apis_for(orders) == []
    put(orders, role)
    assert index.apis_for(orders) == [("rest", api_id)]
    put(other, role, event="PutRestApi")
    assert (index.apis_for(orders), index.apis_for(other)) == ([], [("rest", api_id)])
    aws.client("apigateway").delete_rest_api(restApiId=api_id)
    _timeout_change(runtime, "other-api", 10)
    assert index.apis_for(other) == []
    calls.clear()
    _timeout_change(runtime, "other-api", 10)
    assert _api_reads(calls) == [], calls.calls


def test_index_writers_keep_the_later_reading_and_an_entry_expires(aws):
    """Concurrent writers of one (function, API) pair: the later reading wins whatever the order of the writes
    (a conditional put on DynamoDB, moto's own condition evaluation); an entry no sweep refreshes expires."""
    from chalicelib.core.aws import Clients
    from chalicelib.store.state import INVOKERS_TTL_SECONDS, DynamoTable, InvokerIndex, table_definition

    aws.client("dynamodb").create_table(**table_definition("safetycatch-test"))
    now = [1_000_000.0]
    index = InvokerIndex(DynamoTable(Clients(REGION), "safetycatch-test"), clock=lambda: now[0])
    fn = _fn("orders-api")
    assert index.forget(fn, "rest", "a1b2c3d4e5", read_at=now[0] + 2)
    assert not index.record(fn, "rest", "a1b2c3d4e5", read_at=now[0] + 1), "an older reading must not resurrect"
    assert index.apis_for(fn) == []
    assert index.record(fn, "rest", "a1b2c3d4e5", read_at=now[0] + 3)
    assert index.record(fn, "v2", "f6g7h8i9j0", read_at=now[0] + 3)
    assert index.apis_for(fn) == [("rest", "a1b2c3d4e5"), ("v2", "f6g7h8i9j0")]
    assert index.functions_of(ACCOUNT, REGION, "f6g7h8i9j0") == [(fn, "v2")]
    assert not index.built(ACCOUNT, REGION)
    index.mark_built(ACCOUNT, REGION, now[0])
    assert index.built(ACCOUNT, REGION)
    now[0] += INVOKERS_TTL_SECONDS + 10
    assert index.apis_for(fn) == [] and not index.built(ACCOUNT, REGION)


def test_a_scan_without_fix_and_a_dry_run_event_write_no_index(aws, make_runtime, calls):
    """Dry-run and a plain scan write nothing, not even the bot's own index (reads only)."""
    from chalicelib.store.state import table_definition

    aws.client("dynamodb").create_table(**table_definition("safetycatch-idx"))
    arn = aws.function("orders-api", timeout=10)
    _rest_integration(aws, world.invocation_uri(arn), credentials=_invocation_role(aws))
    runtime = make_runtime(mode="dry-run", table="safetycatch-idx")
    calls.clear()
    runtime.engine(ACCOUNT, REGION).sweep(act=False)
    _timeout_change(runtime, "orders-api", 30)
    assert calls.writes == [], calls.writes
    enforce = make_runtime(table="safetycatch-idx")
    enforce.engine(ACCOUNT, REGION).sweep(act=False)
    assert not [c for c in calls.writes if c.startswith("dynamodb")], calls.writes


def test_an_import_naming_two_functions_reads_that_api_once_and_no_other(aws, runtime, calls):
    """An event's few functions are read one by one from their own APIs (the imported one, read once for both),
    not by reading every API of a busy region as a sweep does."""
    from chalicelib.inventory.apis import EVENT_PATH_MAX_APIS

    _many_apis(aws, EVENT_PATH_MAX_APIS + 2)
    orders, items = aws.function("orders-api", timeout=30), aws.function("items-api", timeout=60)
    api_id = aws.client("apigateway").import_rest_api(
        body=world.body(world.openapi("shop", {"GET /orders": orders, "POST /items": items})))["id"]
    for function in (orders, items):
        _grant(aws, function, api_id)
    calls.clear()
    report = handle_event(api_call("ImportRestApi", {"failOnWarnings": False}, {"id": api_id, "name": "shop"},
                                   service="apigateway"), runtime=runtime)
    assert {f["function"] for f in report["findings"] if f["outcome"] == "fixed"} == {orders, items}
    assert "apigateway.GetRestApis" not in calls.calls, calls.calls
    # the import's own read of the API (which functions it targets), then the API once for both functions' routes
    assert calls.calls.count("apigateway.GetResources") == 2, calls.calls
