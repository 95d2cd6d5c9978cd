"""An embedded AWS for the demo, the bench and the tests: a moto server on a free loopback port, and a
``SandboxAccount`` that builds the footgun-laden functions the bot is meant to catch.

Dev-only (moto is not in the Lambda package).

Example:
    with moto_server() as endpoint:
        account = SandboxAccount()
        account.function("orders-api", timeout=30)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import boto3

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def patched_env(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the duration of the block."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def answer_missing_apis(app: Any) -> Any:
    """WSGI middleware in front of moto: the APIs moto lacks, and only those, answer as AWS does where they are
    not available, instead of moto's HTML 500 (and its stdout notice) - so the bot degrades as documented.

    * Compute Optimizer (no moto backend): ``OptInRequiredException``, what a new account that has not opted in
      gets (AWS Compute Optimizer API reference); the bot keeps its memory estimate, labelled as one.
    * IAM SimulatePrincipalPolicy: an ``InvalidAction`` error, as for an action an endpoint does not offer; the
      bot's local policy evaluator decides and says why.
    """

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith("ComputeOptimizerService."):
            body = json.dumps({"__type": "OptInRequiredException", "message": "The account is not opted in to "
                               "AWS Compute Optimizer (sandbox: moto has no Compute Optimizer)."}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")])
            return [body]
        if environ.get("REQUEST_METHOD") == "POST" and "form-urlencoded" in str(environ.get("CONTENT_TYPE", "")):
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(raw)
            if b"Action=SimulatePrincipalPolicy" in raw:
                body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>"
                        b"SimulatePrincipalPolicy is not available here (sandbox: moto lacks it)</Message></Error>"
                        b"<RequestId>sandbox</RequestId></ErrorResponse>")
                start_response("400 Bad Request", [("Content-Type", "text/xml")])
                return [body]
        return app(environ, start_response)

    return middleware


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Run a moto server on 127.0.0.1:<free port>; AWS_ENDPOINT_URL and fake credentials point at it. The APIs
    moto lacks answer as AWS does where they are unavailable (:func:`answer_missing_apis`). Each server starts
    empty: moto keeps its state per process, so what an earlier server in this process made is reset first
    (moto's own ``POST /moto-api/reset``)."""
    import logging

    from moto.moto_server import threaded_moto_server
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log lines on the console
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    dispatcher = threaded_moto_server.DomainDispatcherApplication
    with mock.patch.object(threaded_moto_server, "DomainDispatcherApplication",
                           lambda *a, **k: answer_missing_apis(dispatcher(*a, **k))):
        server.start()
    endpoint = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        with patched_env(AWS_ENDPOINT_URL=endpoint, AWS_PROFILE=None, **FAKE_CREDENTIALS):
            yield endpoint
    finally:
        server.stop()


def tiny_zip(body: str = "def handler(event, context):\n    return {'statusCode': 200}\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", body)
    return buffer.getvalue()


class SandboxAccount:
    """Builds functions and their surroundings in whatever AWS the environment points at (moto)."""

    def __init__(self, region: str = REGION, session: boto3.session.Session | None = None) -> None:
        self.session = session or boto3.session.Session(region_name=region)
        self.region = region
        self._clients: dict[str, Any] = {}
        self._role: str | None = None
        self._zip = tiny_zip()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)
        return self._clients[service]

    @property
    def role(self) -> str:
        if self._role is None:
            iam = self.client("iam")
            try:
                self._role = iam.get_role(RoleName="app-role")["Role"]["Arn"]
            except iam.exceptions.NoSuchEntityException:
                self._role = iam.create_role(RoleName="app-role", AssumeRolePolicyDocument='{"Version":"2012-10-17",'
                                             '"Statement":[{"Effect":"Allow","Principal":{"Service":'
                                             '"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}')["Role"]["Arn"]
        return self._role

    def function(self, name: str, timeout: int = 10, memory: int = 512, tags: dict[str, str] | None = None,
                 **extra: Any) -> str:
        """Create a function; returns its ARN."""
        response = self.client("lambda").create_function(
            FunctionName=name, Runtime="python3.12", Role=self.role, Handler="app.handler",
            Code={"ZipFile": self._zip}, Timeout=timeout, MemorySize=memory, Tags=tags or {}, **extra)
        return str(response["FunctionArn"])

    def rest_api(self, function_arn: str, path: str = "orders", method: str = "GET", name: str = "",
                 timeout_ms: int | None = None, grant: bool = True) -> str:
        """A REST API with ``method /path`` → the function (AWS_PROXY) and the invoke permission."""
        api = self.client("apigateway")
        api_id = api.create_rest_api(name=name or f"{path}-api")["id"]
        root = api.get_resources(restApiId=api_id)["items"][0]["id"]
        resource = api.create_resource(restApiId=api_id, parentId=root, pathPart=path)["id"]
        api.put_method(restApiId=api_id, resourceId=resource, httpMethod=method, authorizationType="NONE")
        kwargs = {"timeoutInMillis": timeout_ms} if timeout_ms else {}
        api.put_integration(restApiId=api_id, resourceId=resource, httpMethod=method, type="AWS_PROXY",
                            integrationHttpMethod="POST", **kwargs,
                            uri=f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/"
                                f"{function_arn}/invocations")
        if grant:
            self.client("lambda").add_permission(
                FunctionName=function_arn, StatementId=f"apigw-{api_id}", Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=f"arn:aws:execute-api:{self.region}:{ACCOUNT}:{api_id}/*/{method}/{path}")
        return str(api_id)

    def http_api(self, function_arn: str, route: str = "POST /orders", timeout_ms: int | None = None,
                 grant: bool = True) -> str:
        """An HTTP API with one route → the function (payload 2.0) and the invoke permission."""
        api = self.client("apigatewayv2")
        api_id = api.create_api(Name=f"http-{route.split()[-1].strip('/')}", ProtocolType="HTTP")["ApiId"]
        kwargs = {"TimeoutInMillis": timeout_ms} if timeout_ms else {}
        integration = api.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=function_arn,
                                             PayloadFormatVersion="2.0", **kwargs)["IntegrationId"]
        api.create_route(ApiId=api_id, RouteKey=route, Target=f"integrations/{integration}")
        if grant:
            self.client("lambda").add_permission(
                FunctionName=function_arn,
                StatementId=f"apigw-{api_id}",
                Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=f"arn:aws:execute-api:{self.region}:{ACCOUNT}:{api_id}/*",
            )
        return str(api_id)

    def queue(self, name: str) -> str:
        """Create an SQS queue; returns its ARN."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def sqs_mapping(self, function_arn: str, queue_name: str, batch_size: int = 10,
                    report_failures: bool = False) -> str:
        """An SQS → function mapping; returns its UUID. (By name: moto filters ListEventSourceMappings on
        the FunctionName exactly as it was given at creation; AWS accepts either form.)"""
        kwargs = {"FunctionResponseTypes": ["ReportBatchItemFailures"]} if report_failures else {}
        return str(
            self.client("lambda").create_event_source_mapping(
                EventSourceArn=self.queue(queue_name),
                FunctionName=function_arn.rsplit(":", 1)[-1],
                BatchSize=batch_size,
                **kwargs,
            )["UUID"]
        )

    def concurrency_history(self, function_name: str, peak: float, days: int = 3) -> None:
        """Record ConcurrentExecutions datapoints (hourly, peaking at ``peak``) for the function."""
        now = datetime.now(timezone.utc)
        points = [
            {
                "MetricName": "ConcurrentExecutions",
                "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
                "Timestamp": now - timedelta(hours=h),
                "Value": peak if h == 5 else max(1.0, peak / 3),
                "Unit": "Count",
            }
            for h in range(1, days * 24)
        ]
        for start in range(0, len(points), 500):
            self.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=points[start:start + 500])

    def layer(self, name: str, size_bytes: int) -> str:
        """Publish a layer whose zip is about ``size_bytes`` (incompressible content); returns its version ARN."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("python/blob.bin", os.urandom(max(0, size_bytes - 200)))
        layer = self.client("lambda").publish_layer_version(LayerName=name, Content={"ZipFile": buffer.getvalue()},
                                                             CompatibleRuntimes=["python3.12"])
        return str(layer["LayerVersionArn"])

    def function_url(self, function_name: str) -> str:
        """Give the function a public function URL; returns the URL."""
        return str(self.client("lambda").create_function_url_config(FunctionName=function_name,
                                                                    AuthType="NONE")["FunctionUrl"])

    def metric_history(self, function_name: str, metric: str, value: float, hours: int = 48, qualifier: str = "",
                       unit: str = "None", peak: float | None = None) -> None:
        """Hourly datapoints of an AWS/Lambda metric (``peak`` once, ``value`` otherwise); ``qualifier`` adds
        the alias / version ``Resource`` dimension as Lambda publishes it."""
        dimensions = [{"Name": "FunctionName", "Value": function_name}]
        if qualifier:
            dimensions.append({"Name": "Resource", "Value": f"{function_name}:{qualifier}"})
        now = datetime.now(timezone.utc)
        points = [{"MetricName": metric, "Dimensions": dimensions, "Timestamp": now - timedelta(hours=h),
                   "Value": peak if peak is not None and h == 3 else value, "Unit": unit} for h in range(1, hours)]
        for start in range(0, len(points), 500):
            self.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=points[start:start + 500])
    # -- builders for vpc-no-egress, recursive-trigger, sync-error-status and tmp-storage -----------------

    def vpc(self, egress: str = "none", subnets: int = 2, endpoints: tuple[str, ...] = ()) -> dict[str, Any]:
        """A VPC whose private subnets route 0.0.0.0/0 per ``egress``: ``none`` (local only), ``igw``
        (an internet gateway - no egress for Lambda), ``nat`` (a public NAT gateway), ``nat-private``.
        ``endpoints``: AWS service short names (``s3``/``dynamodb`` as gateway endpoints, others interface).
        Returns ``{"vpc", "subnets", "route_table", "nat"}``."""
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        private = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24")["Subnet"]["SubnetId"]
                   for i in range(subnets)]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        for subnet in private:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        nat = ""
        if egress != "none":
            igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
            ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        if egress == "igw":
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        elif egress.startswith("nat"):
            public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.100.0/24")["Subnet"]["SubnetId"]
            public_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            ec2.associate_route_table(RouteTableId=public_table, SubnetId=public)
            ec2.create_route(RouteTableId=public_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
            nat = ec2.create_nat_gateway(SubnetId=public, ConnectivityType="private" if egress == "nat-private"
                                         else "public")["NatGateway"]["NatGatewayId"]
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        for service in endpoints:
            kind = "Gateway" if service in ("s3", "dynamodb") else "Interface"
            ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{self.region}.{service}",
                                    VpcEndpointType=kind, **({"RouteTableIds": [table]} if kind == "Gateway"
                                                             else {"SubnetIds": private[:1]}))
        return {"vpc": vpc, "subnets": private, "route_table": table, "nat": nat}

    def execution_role(self, name: str, inline: dict[str, Any] | None = None,
                       managed: tuple[dict[str, Any], ...] = ()) -> str:
        """A Lambda execution role with inline policies (name → document) and customer-managed policies
        (documents, created and attached); returns its ARN."""
        iam = self.client("iam")
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":'
                              '"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
                              )["Role"]["Arn"]
        for policy_name, document in (inline or {}).items():
            iam.put_role_policy(
                RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps({"Version": "2012-10-17", **document})
            )
        for i, document in enumerate(managed):
            policy = iam.create_policy(
                PolicyName=f"{name}-managed-{i}", PolicyDocument=json.dumps({"Version": "2012-10-17", **document})
            )
            iam.attach_role_policy(RoleName=name, PolicyArn=policy["Policy"]["Arn"])
        return str(arn)

    def bucket_trigger(self, bucket: str, function_arn: str, prefix: str = "", suffix: str = "",
                       events: tuple[str, ...] = ("s3:ObjectCreated:*",)) -> None:
        """Create ``bucket`` (if needed) and notify the function on ``events`` (with the invoke permission)."""
        s3 = self.client("s3")
        s3.create_bucket(Bucket=bucket)
        self.client("lambda").add_permission(
            FunctionName=function_arn, StatementId=f"s3-{bucket}", Action="lambda:InvokeFunction",
            Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{bucket}", SourceAccount=ACCOUNT)
        rules = [{"Name": n, "Value": v} for n, v in (("prefix", prefix), ("suffix", suffix)) if v]
        config = {"LambdaFunctionArn": function_arn, "Events": list(events),
                  **({"Filter": {"Key": {"FilterRules": rules}}} if rules else {})}
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"LambdaFunctionConfigurations": [config]})

    def topic_trigger(self, topic: str, function_arn: str) -> str:
        """An SNS topic the function subscribes to (with the invoke permission); returns the topic ARN."""
        arn = str(self.client("sns").create_topic(Name=topic)["TopicArn"])
        self.client("lambda").add_permission(
            FunctionName=function_arn, StatementId=f"sns-{topic}", Action="lambda:InvokeFunction",
            Principal="sns.amazonaws.com", SourceArn=arn)
        self.client("sns").subscribe(TopicArn=arn, Protocol="lambda", Endpoint=function_arn)
        return arn

    def custom_rest_api(self, function_arn: str, path: str = "orders", method: str = "POST",
                        responses: tuple[tuple[str, str], ...] = (("200", ""),)) -> str:
        """A REST API with a non-proxy (AWS) Lambda integration and ``(status, selectionPattern)`` responses."""
        api = self.client("apigateway")
        api_id = api.create_rest_api(name=f"{path}-custom")["id"]
        root = api.get_resources(restApiId=api_id)["items"][0]["id"]
        resource = api.create_resource(restApiId=api_id, parentId=root, pathPart=path)["id"]
        api.put_method(restApiId=api_id, resourceId=resource, httpMethod=method, authorizationType="NONE")
        api.put_integration(restApiId=api_id, resourceId=resource, httpMethod=method, type="AWS",
                            integrationHttpMethod="POST",
                            uri=f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/{function_arn}/invocations")
        for status, pattern in responses:
            api.put_method_response(restApiId=api_id, resourceId=resource, httpMethod=method, statusCode=status)
            api.put_integration_response(restApiId=api_id, resourceId=resource, httpMethod=method, statusCode=status,
                                         selectionPattern=pattern)
        self.client("lambda").add_permission(
            FunctionName=function_arn, StatementId=f"apigw-{api_id}", Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=f"arn:aws:execute-api:{self.region}:{ACCOUNT}:{api_id}/*/{method}/{path}")
        return str(api_id)

    def log_lines(self, function_name: str, messages: list[str], minutes_ago: int = 30) -> None:
        """Write ``messages`` into the function's log group (created if needed), ``minutes_ago`` back."""
        logs, group = self.client("logs"), f"/aws/lambda/{function_name}"
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        stream = f"2025/06/10/[$LATEST]{len(messages):04d}{minutes_ago:06d}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        start = int((datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).timestamp() * 1000)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": start + i, "message": m} for i, m in enumerate(messages)])


def member_sandbox(account: str, region: str = REGION, role: str = "OrganizationAccountAccessRole") -> SandboxAccount:
    """A sandbox in another account of the same moto: moto maps an assumed role's credentials to the role's
    account (the role need not exist there)."""
    creds = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="setup")["Credentials"]
    session = boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                    aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"], region_name=region)
    return SandboxAccount(region=region, session=session)
