"""Wire formats generated from botocore's service models, behind one interface
(:class:`~strongroom.protocol.wire.WireProtocol`). Imports nothing of strongroom but errors."""

from strongroom.protocol.json import JSONProtocol
from strongroom.protocol.query import QueryProtocol
from strongroom.protocol.rest_json import RestJSONProtocol
from strongroom.protocol.wire import Response, WireProtocol, WireRequest

__all__ = ["JSONProtocol", "QueryProtocol", "Response", "RestJSONProtocol", "WireProtocol", "WireRequest"]
