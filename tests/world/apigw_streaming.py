"""A small part of the test world: API Gateway's ``responseTransferMode`` as AWS documents it.

moto 5.2 accepts ``PutIntegration`` with ``responseTransferMode`` (botocore sends it) but drops it: its
``Integration`` never stores the field and ``GetResources``/``GetIntegration`` never return it. AWS keeps it and
returns it on the integration (``BUFFERED`` by default, ``STREAM`` for a streamed proxy integration), see
https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html and the ``Integration``
shape in botocore's apigateway service model. ``remember_transfer_mode()`` patches moto's integration (for one
test, through ``monkeypatch``) to store the field and answer it, nothing else.

Example:
    def test_x(aws, monkeypatch):
        remember_transfer_mode(monkeypatch)
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.apigateway import models, responses


def remember_transfer_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's REST API integrations keep ``responseTransferMode`` (default ``BUFFERED``) as AWS does."""
    original_put = responses.APIGatewayResponse.put_integration
    original_json = models.Integration.to_json

    def put_integration(self: Any) -> Any:
        status, headers, body = original_put(self)
        parts = self.path.split("/")
        integration = self.backend.get_integration(parts[2], parts[4], parts[6])
        integration.response_transfer_mode = self._get_param("responseTransferMode") or "BUFFERED"
        return status, headers, body

    def to_json(self: Any) -> dict[str, Any]:
        return {**original_json(self), "responseTransferMode": getattr(self, "response_transfer_mode", "BUFFERED")}

    monkeypatch.setattr(responses.APIGatewayResponse, "put_integration", put_integration)
    monkeypatch.setattr(models.Integration, "to_json", to_json)
