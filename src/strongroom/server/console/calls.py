"""Console actions as API calls through the one request pipeline.

The console never reaches a service handler directly. Each action is an AWS request built by
botocore from the service's model (the same model the protocol layer reads), signed with SigV4
under the signed-in principal's credential, and handed to :meth:`Pipeline.handle` in process as
an ASGI request: all eleven steps run (authentication, body limits, fair share, parsing,
authorization, the call, the audit record, serialization) exactly as for boto3 over the network.
The answer is read back with botocore's parser, so the console sees what any SDK would: the
answer's members, or the error's code and message.

The credential is the key store's (looked up again for every action by the caller): the
browser never holds the secret key, and a key deactivated or deleted, or a session token
expired, fails the next action's signature check like any other request.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import HeadersDict, create_request_object, prepare_request_dict
from botocore.credentials import Credentials
from botocore.model import ServiceModel
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from strongroom.auth.principal import Credential
from strongroom.server.bodies import Receive
from strongroom.server.pipeline import Pipeline

__all__ = ["ApiError", "Caller"]

# Only the Host header is taken from this: the request never leaves the process.
_ENDPOINT = "http://console.strongroom.internal"


class ApiError(Exception):
    """The API's refusal: its error code, message and HTTP status, as a client sees them."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class Caller:
    """Makes API calls through ``pipeline`` as a given credential."""

    def __init__(self, pipeline: Pipeline, user_agent: str) -> None:
        self._pipeline = pipeline
        self._user_agent = user_agent
        self._session = botocore.session.get_session()
        self._models: dict[str, ServiceModel] = {}

    def _model(self, service: str) -> ServiceModel:
        model = self._models.get(service)
        if model is None:
            model = self._models[service] = self._session.get_service_model(service)
        return model

    async def call(
        self,
        credential: Credential,
        region: str,
        service: str,
        operation: str,
        params: dict[str, Any],
        client: tuple[str, int],
    ) -> dict[str, Any]:
        """The operation's answer (botocore's parsed form, timestamps as datetimes), or
        :class:`ApiError` with the API's code and message."""
        model = self._model(service)
        op = model.operation_model(operation)
        if op.input_shape is not None:  # what botocore's client fills in (generate_idempotent_uuid)
            for member in op.input_shape.members:
                if op.input_shape.members[member].metadata.get("idempotencyToken") and member not in params:
                    params = {**params, member: str(uuid.uuid4())}
        # No client-side validation: the server's own checks answer, in AWS's words.
        request_dict = create_serializer(model.protocol, include_validation=False).serialize_to_request(params, op)
        prepare_request_dict(request_dict, endpoint_url=_ENDPOINT)
        request_dict["headers"]["User-Agent"] = self._user_agent
        request = create_request_object(request_dict)
        signing_name = model.signing_name or service
        keys = Credentials(credential.access_key_id, credential.secret_access_key, credential.session_token)
        SigV4Auth(keys, signing_name, region).add_auth(request)
        prepared = request.prepare()
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        url = urlsplit(prepared.url)
        headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in prepared.headers.items()]
        if not any(k == b"host" for k, _ in headers):  # signed from the URL; an HTTP client would send it
            headers.append((b"host", url.netloc.encode("latin-1")))
        if not any(k == b"content-length" for k, _ in headers):
            headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "method": prepared.method,
            "path": unquote(url.path or "/"),
            "raw_path": (url.path or "/").encode("latin-1"),
            "query_string": url.query.encode("latin-1"),
            "headers": headers,
            "client": client,
        }
        status, response_headers, response_body = await self._run(scope, body)
        parsed: dict[str, Any] = create_parser(model.protocol).parse(
            {"status_code": status, "headers": response_headers, "body": response_body},
            op.output_shape,  # type: ignore[arg-type]  # botocore's parsers take None (no output members)
        )
        if status >= 300 or "Error" in parsed:
            error = parsed.get("Error") or {}
            raise ApiError(str(error.get("Code") or "InternalFailure"), str(error.get("Message") or ""), status)
        parsed.pop("ResponseMetadata", None)
        return parsed

    async def _run(self, scope: dict[str, Any], body: bytes) -> tuple[int, HeadersDict, bytes]:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        headers = HeadersDict()
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for k, v in message.get("headers", []):
                    headers[k.decode("latin-1")] = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        receiver: Receive = receive
        await self._pipeline.handle(scope, receiver, send)
        return status, headers, b"".join(chunks)
