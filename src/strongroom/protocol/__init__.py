"""Wire formats generated from botocore's service models. Imports nothing of strongroom but errors."""

from strongroom.protocol.json import JSONProtocol

__all__ = ["JSONProtocol"]
