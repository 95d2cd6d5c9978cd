"""Every AWS write the bot makes goes through here: one place to audit, dry-run, cap and permission.

``WRITES`` lists each write operation with the IAM action it needs; the IAM policy and ``explain`` are
derived from it. In dry-run the gateway records what it would do and makes no call at all.

Example:
    >>> gateway = Gateway(Clients("us-east-1"), dry_run=True)
    >>> gateway.put_function_concurrency("arn:aws:lambda:us-east-1:123456789012:function:f", 10)
    >>> gateway.log[0].operation
    'PutFunctionConcurrency'
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.aws import Clients, error_code
from chalicelib.core.log import logger

# operation -> (service, boto3 method, IAM action)
WRITES: dict[str, tuple[str, str, str]] = {
    "PutFunctionConcurrency": ("lambda", "put_function_concurrency", "lambda:PutFunctionConcurrency"),
    "DeleteFunctionConcurrency": ("lambda", "delete_function_concurrency", "lambda:DeleteFunctionConcurrency"),
    "UpdateFunctionConfiguration": ("lambda", "update_function_configuration",
                                    "lambda:UpdateFunctionConfiguration"),
    "UpdateEventSourceMapping": ("lambda", "update_event_source_mapping", "lambda:UpdateEventSourceMapping"),
    "PutFunctionRecursionConfig": ("lambda", "put_function_recursion_config", "lambda:PutFunctionRecursionConfig"),
    "PutMetricAlarm": ("cloudwatch", "put_metric_alarm", "cloudwatch:PutMetricAlarm"),
    "DeleteAlarms": ("cloudwatch", "delete_alarms", "cloudwatch:DeleteAlarms"),
    "SetAlarmState": ("cloudwatch", "set_alarm_state", "cloudwatch:SetAlarmState"),
    "PutProvisionedConcurrencyConfig": ("lambda", "put_provisioned_concurrency_config",
                                        "lambda:PutProvisionedConcurrencyConfig"),
    "RegisterScalableTarget": ("application-autoscaling", "register_scalable_target",
                               "application-autoscaling:RegisterScalableTarget"),
    "DeregisterScalableTarget": ("application-autoscaling", "deregister_scalable_target",
                                 "application-autoscaling:DeregisterScalableTarget"),
    "PutScalingPolicy": ("application-autoscaling", "put_scaling_policy", "application-autoscaling:PutScalingPolicy"),
    "DeleteScalingPolicy": ("application-autoscaling", "delete_scaling_policy",
                            "application-autoscaling:DeleteScalingPolicy"),
}

# What AWS also requires of the caller for a write, beyond its own action, on other resources than the call's
# (documented, not visible on moto; safetycatch/build/iam.py's DEPENDENT_PERMISSIONS are those granted on the call's
# resource). Application Auto Scaling user guide, "Permissions required for actions on target services and CloudWatch"
# (Lambda) and "Permissions required to create a service-linked role": registering a Lambda target needs the
# provisioned-concurrency actions, a target-tracking policy needs the CloudWatch alarm actions (its alarms are
# named TargetTracking-function:<name>:<qualifier>-...), and the first registration in an account creates the
# AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency service-linked role.
ALSO_REQUIRED: dict[str, tuple[str, ...]] = {
    "RegisterScalableTarget": ("lambda:GetProvisionedConcurrencyConfig", "lambda:PutProvisionedConcurrencyConfig",
                               "lambda:DeleteProvisionedConcurrencyConfig", "iam:CreateServiceLinkedRole"),
    "PutScalingPolicy": ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"),
    "DeleteScalingPolicy": ("cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"),
    "DeregisterScalableTarget": ("cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"),
}

CONFLICT_RETRIES = (1.0, 2.0, 4.0)  # a function mid-update answers ResourceConflictException
# An event source mapping that is Creating, Enabling or Updating answers UpdateEventSourceMapping with
# ResourceInUseException (Lambda API reference: "you tried to update an event source mapping in the CREATING
# state"): wait for it to settle, bounded (30 s in all), then the caller reports the mapping it could not change.
SETTLE_RETRIES = (2.0, 4.0, 8.0, 16.0)
RETRIED = {"ResourceConflictException": CONFLICT_RETRIES}
RETRIED_FOR = {"UpdateEventSourceMapping": {**RETRIED, "ResourceInUseException": SETTLE_RETRIES}}


@dataclass
class WriteRecord:
    operation: str
    params: dict[str, Any]
    dry_run: bool


@dataclass
class Gateway:
    """Applies writes (or, in dry-run, only records them), each logged in ``log``."""

    clients: Clients
    dry_run: bool = False
    log: list[WriteRecord] = field(default_factory=list)
    sleep: Any = time.sleep

    def _write(self, operation: str, **params: Any) -> dict[str, Any]:
        service, method, _ = WRITES[operation]
        self.log.append(WriteRecord(operation, params, self.dry_run))
        logger.info("aws write", extra={"operation": operation, "params": params, "dry_run": self.dry_run})
        if self.dry_run:
            return {}
        call = getattr(self.clients(service), method)
        retried, attempt = RETRIED_FOR.get(operation, RETRIED), 0
        while True:
            try:
                return dict(call(**params))
            except ClientError as exc:
                delays = retried.get(error_code(exc) or "", ())
                if attempt >= len(delays):
                    raise
                self.sleep(delays[attempt])
                attempt += 1

    def put_function_concurrency(self, function_arn: str, value: int) -> None:
        self._write("PutFunctionConcurrency", FunctionName=function_arn, ReservedConcurrentExecutions=value)

    def delete_function_concurrency(self, function_arn: str) -> None:
        self._write("DeleteFunctionConcurrency", FunctionName=function_arn)

    def update_function_configuration(self, function_arn: str, **changes: Any) -> None:
        self._write("UpdateFunctionConfiguration", FunctionName=function_arn, **changes)

    def update_event_source_mapping(self, uuid: str, **changes: Any) -> None:
        self._write("UpdateEventSourceMapping", UUID=uuid, **changes)

    def put_function_recursion_config(self, function_arn: str, recursive_loop: str) -> None:
        self._write("PutFunctionRecursionConfig", FunctionName=function_arn, RecursiveLoop=recursive_loop)

    def put_metric_alarm(self, **alarm: Any) -> None:
        self._write("PutMetricAlarm", **alarm)

    def delete_alarm(self, alarm_name: str) -> None:
        self._write("DeleteAlarms", AlarmNames=[alarm_name])

    def set_alarm_state(self, alarm_name: str, state: str, reason: str) -> None:
        self._write("SetAlarmState", AlarmName=alarm_name, StateValue=state, StateReason=reason)

    def put_provisioned_concurrency_config(self, function_arn: str, qualifier: str, value: int) -> None:
        self._write("PutProvisionedConcurrencyConfig", FunctionName=function_arn, Qualifier=qualifier,
                    ProvisionedConcurrentExecutions=value)

    def register_scalable_target(self, resource_id: str, dimension: str, minimum: int, maximum: int) -> None:
        self._write("RegisterScalableTarget", ServiceNamespace="lambda", ResourceId=resource_id,
                    ScalableDimension=dimension, MinCapacity=minimum, MaxCapacity=maximum)

    def deregister_scalable_target(self, resource_id: str, dimension: str) -> None:
        self._write("DeregisterScalableTarget", ServiceNamespace="lambda", ResourceId=resource_id,
                    ScalableDimension=dimension)

    def put_target_tracking_policy(self, resource_id: str, dimension: str, name: str, metric: str,
                                   target: float) -> None:
        self._write("PutScalingPolicy", ServiceNamespace="lambda", ResourceId=resource_id,
                    ScalableDimension=dimension, PolicyName=name, PolicyType="TargetTrackingScaling",
                    TargetTrackingScalingPolicyConfiguration={
                        "TargetValue": target, "PredefinedMetricSpecification": {"PredefinedMetricType": metric}})

    def delete_scaling_policy(self, resource_id: str, dimension: str, name: str) -> None:
        self._write("DeleteScalingPolicy", ServiceNamespace="lambda", ResourceId=resource_id,
                    ScalableDimension=dimension, PolicyName=name)


def operation_permissions(operation: str) -> tuple[str, ...]:
    """The IAM actions one gateway write needs: its own and the ones AWS requires with it.

    Example:
        >>> operation_permissions("PutScalingPolicy")[0]
        'application-autoscaling:PutScalingPolicy'
    """
    return (WRITES[operation][2], *ALSO_REQUIRED.get(operation, ()))

