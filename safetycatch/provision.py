"""``safetycatch init``: create what local runs need, idempotently.

Example:
    init_state_table(Clients("us-east-1"), "safetycatch-state")
    # -> True
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from chalicelib.core.aws import Clients, error_code
from chalicelib.store.state import table_definition


def init_state_table(clients: Clients, name: str) -> bool:
    """Create the state table (with TTL on ``expiration``) unless it exists; True if it was created."""
    dynamodb = clients("dynamodb")
    try:
        dynamodb.create_table(**table_definition(name))
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
        return False
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True,
                                                                          "AttributeName": "expiration"})
    return True
