"""RotateSecret and CancelRotateSecret: their parameters, the caller's right to invoke the
function, and their answers.

The service checks what the call says (a ClientRequestToken, rotation rules that parse, a function
to run, the caller's ``lambda:InvokeFunction`` on it), finds and locks the secret, and hands the
rotation engine a typed :class:`~strongroom.rotation.engine.RotationRequest` in the same
transaction; the engine records the job and the value-less AWSPENDING version. A rotation that
stalled (AWSPENDING left on another version) is queued again and the call refused, as AWS says:
"A previous rotation isn't complete. That rotation will be reattempted."
"""

from __future__ import annotations

from typing import Any

from strongroom import clock
from strongroom.context import RequestContext
from strongroom.domain.functions import authorization_requests
from strongroom.domain.schedule import ScheduleError, parse_rules
from strongroom.errors import AWSError
from strongroom.rotation.engine import CANNOT_INVOKE, RotationEngine, RotationRequest
from strongroom.services.secretsmanager import messages as M
from strongroom.services.secretsmanager.base import ServiceBase
from strongroom.store import Tx
from strongroom.store.secrets import SecretRow

__all__ = ["NO_FUNCTION", "PREVIOUS_INCOMPLETE", "RotationOperations"]

NO_FUNCTION = "No Lambda rotation function ARN is associated with this secret."
PREVIOUS_INCOMPLETE = "A previous rotation isn't complete. That rotation will be reattempted."


class RotationOperations(ServiceBase):
    """RotateSecret and CancelRotateSecret over the rotation engine."""

    def _engine(self) -> RotationEngine:
        if self.rotation is None:
            raise AWSError("InvalidRequestException", "Rotation is not available on this strongroom server yet.")
        return self.rotation

    async def rotate_secret(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        engine = self._engine()
        token = p.get("ClientRequestToken")
        if token is None:
            # AWS, LocalStack snapshot test_no_client_request_token[RotateSecret]
            raise M.invalid_parameter("You must provide a ClientRequestToken value. We recommend a UUID-type value.")
        rules = p.get("RotationRules")
        if rules:
            try:
                parse_rules(rules)
            except ScheduleError as exc:
                raise M.invalid_parameter(str(exc)) from None
        immediate = p.get("RotateImmediately", True)
        now = clock.now()

        def tx_fn(tx: Tx) -> SecretRow | AWSError:
            secret = self.find_live(tx, ctx, p["SecretId"])
            function_arn = p.get("RotationLambdaARN") or secret.rotation_lambda_arn
            if not function_arn:
                raise M.invalid_request(NO_FUNCTION)
            self._check_invoke(tx, ctx, function_arn)  # the caller's right comes before any state
            request = RotationRequest(secret, token, function_arn, dict(rules) if rules else None, immediate, now)
            if engine.request(tx, request).stalled:
                # The stalled rotation is queued again and this call refused: a change that commits
                # with an error answer. Returned, not raised, so the transaction (and the call's
                # audit record, which carries the error) commits.
                return M.invalid_request(PREVIOUS_INCOMPLETE)
            return secret

        outcome = await self.db.write(tx_fn)
        engine.wake()
        if isinstance(outcome, AWSError):
            raise outcome
        secret = outcome
        return {"ARN": secret.arn, "Name": secret.name, "VersionId": token}

    @staticmethod
    def _check_invoke(tx: Tx, ctx: RequestContext, function_arn: str) -> None:
        """ "To run this command, you must have secretsmanager:RotateSecret permissions and
        lambda:InvokeFunction permissions on the function" (AWS's RotateSecret reference): the
        caller's own right to invoke, decided on every ARN the reference resolves to, as a Lambda
        Invoke call would be. Root is allowed (the authorizer's rule); without an authorizer
        (policies not enforced) there is nothing to check."""
        authz = ctx.authz
        if authz is None:
            return
        try:
            checks = authorization_requests(
                ctx.account_id, ctx.region, ctx.partition, "Invoke", {"FunctionName": function_arn}
            )
        except AWSError:
            raise AWSError("AccessDeniedException", CANNOT_INVOKE) from None  # not a function Lambda knows
        for action, resource, account, keys in checks:
            authz.decide(tx, ctx, action, resource, account, [], keys, "lambda")

    async def cancel_rotate_secret(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        engine = self._engine()

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"])
            pending = engine.cancel(tx, secret)
            out = {"ARN": secret.arn, "Name": secret.name}
            if pending is not None:
                out["VersionId"] = pending
            return out

        return await self.db.write(tx_fn)
