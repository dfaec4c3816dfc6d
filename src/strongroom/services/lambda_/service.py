"""The part of the AWS Lambda API that rotation needs, in Lambda's own wire format.

Functions are zip archives with a ``python3.x`` handler, stored in the database (the environment
as ciphertext), unpacked once per code hash under ``DATA_DIR/functions/<sha256>/`` and run by
:class:`~strongroom.rotation.runtime.FunctionRuntime` in warm worker processes.

Built-in rotators (``strongroom-postgresql-single-user``, ``-postgresql-multi-user``,
``-mysql-single-user``, ``-mysql-multi-user``) exist in every account and region without being
created; they cannot be changed or deleted, only the account root may invoke them directly (their
credentials are strongroom's rotation role's, so another caller choosing their event would act with
rights it does not have), and Secrets Manager may always invoke them. Every name beginning ``strongroom-`` is reserved.

Permissions, as on AWS (docs/security.md, "Lambda permissions"):

* every ``FunctionName`` spelling is resolved by :func:`~strongroom.domain.functions.resolve_function`
  (the authorizer uses the same function, so IAM decides on the function's ARN);
* ``Role`` must be an existing role of the caller's account whose trust policy lets
  ``lambda.amazonaws.com`` assume it, else ``InvalidParameterValueException: The role defined for
  the function cannot be assumed by Lambda.``; the caller's ``iam:PassRole`` is the authorizer's;
* Secrets Manager may invoke an uploaded function only when the function's policy (AddPermission
  statements), evaluated by :mod:`strongroom.policy` with ``aws:SourceArn`` = the secret's ARN and
  ``aws:SourceAccount`` = its account, allows ``secretsmanager.amazonaws.com``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from strongroom import clock
from strongroom.auth.authorizer import BUILTIN_ROTATION_ROLE
from strongroom.context import RequestContext
from strongroom.domain.functions import LAMBDA_SERVICE, FunctionRef, lambda_action, resolve_function
from strongroom.errors import AWSError
from strongroom.rotation.runtime import FunctionRuntime, FunctionSpec
from strongroom.services.lambda_.package import check_zip, extract
from strongroom.services.lambda_.permissions import allows_secretsmanager
from strongroom.services.secretsmanager.values import ValueCipher
from strongroom.store import Conflict, Database, Tx
from strongroom.store import functions as q

__all__ = ["BUILTINS", "OPERATIONS", "Lambda"]

BUILTINS = {
    "strongroom-postgresql-single-user": "strongroom.rotation.builtin.postgresql:single_user",
    "strongroom-postgresql-multi-user": "strongroom.rotation.builtin.postgresql:multi_user",
    "strongroom-mysql-single-user": "strongroom.rotation.builtin.mysql:single_user",
    "strongroom-mysql-multi-user": "strongroom.rotation.builtin.mysql:multi_user",
}
OPERATIONS = [
    "CreateFunction",
    "GetFunction",
    "GetFunctionConfiguration",
    "ListFunctions",
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "DeleteFunction",
    "Invoke",
    "AddPermission",
    "RemovePermission",
    "GetPolicy",
]
RESERVED_PREFIX = "strongroom-"  # names of strongroom's own functions, present and future
CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda."
_ENV_KEY = "strongroom:lambda-environment"
_LOGS_KEY = "strongroom:lambda-logs"


def _not_found(arn: str) -> AWSError:
    return AWSError("ResourceNotFoundException", f"Function not found: {arn}", 404)


def _invalid(message: str) -> AWSError:
    return AWSError("InvalidParameterValueException", message)


def _other_account(ctx: RequestContext, ref: FunctionRef) -> AWSError:
    """A function of another account: strongroom grants cross-account access to no one, so the
    answer is AWS's for a call no resource-based policy allows (the account root's included)."""
    action = lambda_action(ctx.operation or "GetFunction")
    return AWSError(
        "AccessDeniedException",
        f"User: {ctx.principal_arn} is not authorized to perform: {action} on "
        f"resource: {ref.arn} because no resource-based policy allows the "
        f"{action} action",
    )


def _timestamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


class Lambda:
    def __init__(self, db: Database, cipher: ValueCipher, runtime: FunctionRuntime, code_root: Path | None) -> None:
        self.db = db
        self.cipher = cipher
        self.runtime = runtime
        self._tmp = None
        if code_root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="strongroom-functions-")
            code_root = Path(self._tmp.name)
        self.code_root = code_root
        self._unpack_lock = threading.Lock()
        self.handlers = {name: getattr(self, _snake(name)) for name in OPERATIONS}

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    # ------------------------------------------------------------------------ invocation logs

    def record_invocation(self, spec: FunctionSpec, event: Any, result: Any, started: float) -> None:
        """Keep an invocation's outcome and its logs (encrypted), newest 1,000 per function."""
        _, _, _, region, account, _, _ = spec.arn.split(":", 6)
        # The id the invocation's log lines name (a refusal before any worker ran has none).
        request_id = getattr(result, "request_id", "") or str(uuid.uuid4())
        step = event.get("Step") if isinstance(event, dict) else None

        def tx_fn(tx: Tx) -> None:
            logs = None
            if result.logs:
                _, logs = self.cipher.encrypt(
                    tx, account, region, _LOGS_KEY, spec.arn, request_id, result.logs[-65536:]
                )
            q.insert_invocation(
                tx,
                spec.arn,
                request_id,
                started,
                result.duration_ms,
                step,
                "succeeded" if result.ok else "failed",
                result.error_text[:2000] or None,
                logs,
            )

        self.db.write_sync(tx_fn)

    def invocations(
        self, tx: Tx, account_id: str, region: str, function_ref: str, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest invocations of a function with their logs, for ``strongroom logs``."""
        try:
            ref = resolve_function(function_ref, account_id, region)
        except AWSError:
            return []  # no function has that name: nothing was recorded for it
        acct, reg, arn = ref.account, ref.region, ref.arn
        out = []
        for row in q.invocations_of(tx, arn, limit):
            logs = (
                "" if row[6] is None else self.cipher.decrypt(tx, acct, reg, _LOGS_KEY, arn, row[0], 1, bytes(row[6]))
            )
            out.append(
                {
                    "RequestId": row[0],
                    "Started": row[1],
                    "DurationMs": row[2],
                    "Step": row[3],
                    "Outcome": row[4],
                    "Error": row[5],
                    "Logs": logs,
                }
            )
        return out

    # --------------------------------------------------------------------------- resolution

    def resolve(
        self, tx: Tx, account_id: str, region: str, function_ref: str, source_arn: str | None = None
    ) -> FunctionSpec | None:
        """What Secrets Manager runs for ``function_ref`` when rotating the secret ``source_arn``
        (in ``account_id`` / ``region``), or None when it may not run it: no such function, one of
        another account or region, a qualifier other than ``$LATEST``, or a function policy that
        does not let ``secretsmanager.amazonaws.com`` invoke it for that secret."""
        try:
            ref = resolve_function(function_ref, account_id, region)
        except AWSError:
            return None
        if ref.account != account_id or ref.qualifier not in (None, "$LATEST"):
            return None
        if ref.name in BUILTINS:  # strongroom's own: no policy, Secrets Manager may always run them
            return FunctionSpec(
                key=f"{ref.arn}#builtin", arn=ref.arn, name=ref.name, handler=BUILTINS[ref.name], timeout=60.0
            )
        row = self._row(tx, account_id, region, ref.name)
        if row is None or not allows_secretsmanager(row, source_arn, account_id):
            return None
        return self._spec(tx, account_id, region, row)

    def _spec(self, tx: Tx, account_id: str, region: str, row: dict[str, Any]) -> FunctionSpec:
        env = self._environment(tx, account_id, region, row)
        code_dir = self._unpack(tx, account_id, region, row["name"], row["code_sha256"])
        return FunctionSpec(
            key=f"{row['arn']}#{row['revision_id']}",
            arn=row["arn"],
            name=row["name"],
            handler=row["handler"],
            code_dir=str(code_dir),
            timeout=float(row["timeout"]),
            memory_mb=int(row["memory_size"]),
            environment=env,
            role=row["role"],
        )

    def _unpack(self, tx: Tx, account_id: str, region: str, name: str, sha: str) -> Path:
        target = self.code_root / base64.urlsafe_b64decode(sha).hex()
        if target.exists():
            return target
        code = q.code_of(tx, account_id, region, name)
        assert code is not None
        with self._unpack_lock:
            if not target.exists():
                staging = Path(tempfile.mkdtemp(dir=self.code_root))
                extract(code, staging)
                os.replace(staging, target)
        return target

    # ------------------------------------------------------------------------------- rows

    def _row(self, tx: Tx, account_id: str, region: str, name: str) -> dict[str, Any] | None:
        return q.function_row(tx, account_id, region, name)

    @staticmethod
    def _ref(ctx: RequestContext, p: dict[str, Any]) -> FunctionRef:
        return resolve_function(p["FunctionName"], ctx.account_id, ctx.region, p.get("Qualifier"), ctx.partition)

    def _find(self, tx: Tx, ctx: RequestContext, ref: FunctionRef | str) -> dict[str, Any]:
        """The row of the function ``ref`` names (its only version, ``$LATEST``), or AWS's error."""
        if isinstance(ref, str):
            ref = resolve_function(ref, ctx.account_id, ctx.region, None, ctx.partition)
        if ref.account != ctx.account_id:
            raise _other_account(ctx, ref)
        if ref.name in BUILTINS:
            raise _invalid(f"{ref.name} is a strongroom built-in function; it cannot be read or changed.")
        row = self._row(tx, ref.account, ref.region, ref.name)
        if row is None:
            raise _not_found(ref.arn)
        if ref.qualifier not in (None, "$LATEST"):  # strongroom keeps no published versions or aliases
            raise _not_found(ref.qualified_arn)
        return row

    def _check_role(self, tx: Tx, ctx: RequestContext, role_arn: str) -> None:
        """The role must exist in the caller's account and trust ``lambda.amazonaws.com`` (its trust
        policy evaluated by the policy engine, as if Lambda called sts:AssumeRole). The caller's
        ``iam:PassRole`` was decided by the authorizer before the call got here."""
        from strongroom.policy import PolicyError, Request, evaluate, parse_policy

        parts = role_arn.split(":", 5)
        if len(parts) != 6 or parts[4] != ctx.account_id or parts[5].rsplit("/", 1)[-1] == BUILTIN_ROTATION_ROLE:
            raise _invalid(CANNOT_ASSUME)
        document = q.role_trust_policy(tx, role_arn)
        if not document:
            raise _invalid(CANNOT_ASSUME)
        try:
            trust = parse_policy(document)
        except PolicyError:
            raise _invalid(CANNOT_ASSUME) from None
        # A service principal is its own caller: "same account" so that the trust policy alone decides.
        request = Request(
            principal_arn=LAMBDA_SERVICE,
            principal_account=ctx.account_id,
            action="sts:AssumeRole",
            resource=role_arn,
            resource_account=ctx.account_id,
        )
        if not evaluate(request, [], [trust]).allowed:
            raise _invalid(CANNOT_ASSUME)

    def _environment(self, tx: Tx, account_id: str, region: str, row: dict[str, Any]) -> dict[str, str]:
        blob = row["environment_enc"]
        if not blob:
            return {}
        plain = self.cipher.decrypt(tx, account_id, region, _ENV_KEY, row["arn"], "environment", 1, bytes(blob))
        return json.loads(plain)  # type: ignore[no-any-return]

    def _seal_environment(
        self, tx: Tx, ctx: RequestContext, arn: str, variables: dict[str, str] | None
    ) -> bytes | None:
        if not variables:
            return None
        reserved = sorted(k for k in variables if k.startswith("AWS_") and k not in ("AWS_ENDPOINT_URL",))
        if reserved:
            raise _invalid(
                f"Lambda was unable to configure your environment variables because the environment "
                f"variables you have provided contains reserved keys that are currently not supported "
                f"for modification. Reserved keys used in this request: {', '.join(reserved)}"
            )
        _, blob = self.cipher.encrypt(
            tx, ctx.account_id, ctx.region, _ENV_KEY, arn, "environment", json.dumps(variables)
        )
        return blob

    def _configuration(self, tx: Tx, ctx: RequestContext, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "FunctionName": row["name"],
            "FunctionArn": row["arn"],
            "Runtime": row["runtime"],
            "Role": row["role"],
            "Handler": row["handler"],
            "CodeSize": row["code_size"],
            "Description": row["description"],
            "Timeout": row["timeout"],
            "MemorySize": row["memory_size"],
            "LastModified": _timestamp(row["last_modified"]),
            "CodeSha256": row["code_sha256"],
            "Version": "$LATEST",
            "RevisionId": row["revision_id"],
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
        }
        env = self._environment(tx, ctx.account_id, ctx.region, row)
        if env:
            out["Environment"] = {"Variables": env}
        return out

    # ------------------------------------------------------------------------- operations

    async def create_function(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        ref = self._ref(ctx, p)
        name = ref.name
        if ref.account != ctx.account_id:
            raise _other_account(ctx, ref)
        if name in BUILTINS:
            raise AWSError("ResourceConflictException", f"Function already exist: {name}", 409)
        if name.startswith(RESERVED_PREFIX):
            raise _invalid(
                f"Function names beginning with {RESERVED_PREFIX} are reserved for strongroom's built-in functions."
            )
        runtime = p.get("Runtime", "")
        if not runtime.startswith("python3"):
            raise _invalid(
                f"The runtime parameter of {runtime or 'null'} is not supported by strongroom; use a python3.x runtime."
            )
        if p.get("PackageType", "Zip") != "Zip":
            raise _invalid("strongroom runs zip packages only.")
        code = p.get("Code", {}).get("ZipFile")
        if code is None:
            raise _invalid("strongroom takes function code as Code.ZipFile; S3 and image code are not supported.")
        check_zip(code)
        if not p.get("Handler"):
            raise _invalid("Handler is required for a zip package.")
        arn = f"arn:aws:lambda:{ctx.region}:{ctx.account_id}:function:{name}"
        now = clock.now()
        sha = base64.b64encode(hashlib.sha256(code).digest()).decode()

        def tx_fn(tx: Tx) -> dict[str, Any]:
            self._check_role(tx, ctx, p["Role"])
            env = self._seal_environment(tx, ctx, arn, p.get("Environment", {}).get("Variables"))
            try:
                q.insert_function(
                    tx,
                    ctx.account_id,
                    ctx.region,
                    name,
                    arn,
                    runtime,
                    p["Handler"],
                    p["Role"],
                    p.get("Description", ""),
                    p.get("Timeout", 3),
                    p.get("MemorySize", 128),
                    env,
                    code,
                    sha,
                    str(uuid.uuid4()),
                    now,
                )
            except Conflict:
                raise AWSError("ResourceConflictException", f"Function already exist: {name}", 409) from None
            row = self._row(tx, ctx.account_id, ctx.region, name)
            assert row is not None
            return self._configuration(tx, ctx, row)

        return await self.db.write(tx_fn)

    async def get_function(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            row = self._find(tx, ctx, self._ref(ctx, p))
            return {"Configuration": self._configuration(tx, ctx, row), "Code": {"RepositoryType": "S3"}}

        return await self.db.read(tx_fn)

    async def get_function_configuration(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.db.read(lambda tx: self._configuration(tx, ctx, self._find(tx, ctx, self._ref(ctx, p))))

    async def list_functions(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        limit = min(int(p.get("MaxItems", 50)), 50)
        marker = p.get("Marker", "")

        def tx_fn(tx: Tx) -> dict[str, Any]:
            items = q.function_rows(tx, ctx.account_id, ctx.region, marker, limit + 1)
            out: dict[str, Any] = {"Functions": [self._configuration(tx, ctx, r) for r in items[:limit]]}
            if len(items) > limit:
                out["NextMarker"] = items[limit - 1]["name"]
            return out

        return await self.db.read(tx_fn)

    async def update_function_code(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        code = p.get("ZipFile")
        if code is None:
            raise _invalid("strongroom takes function code as ZipFile; S3 and image code are not supported.")
        check_zip(code)
        sha = base64.b64encode(hashlib.sha256(code).digest()).decode()

        def tx_fn(tx: Tx) -> dict[str, Any]:
            row = self._find(tx, ctx, self._ref(ctx, p))
            q.set_code(tx, row["arn"], code, sha, str(uuid.uuid4()), clock.now())
            return self._configuration(tx, ctx, self._find(tx, ctx, row["arn"]))

        out = await self.db.write(tx_fn)
        self.runtime.forget(out["FunctionArn"])
        return out

    async def update_function_configuration(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            row = self._find(tx, ctx, self._ref(ctx, p))
            if "Runtime" in p and not p["Runtime"].startswith("python3"):
                raise _invalid(f"The runtime parameter of {p['Runtime']} is not supported by strongroom.")
            if "Role" in p:
                self._check_role(tx, ctx, p["Role"])
            changes = {
                "runtime": p.get("Runtime"),
                "handler": p.get("Handler"),
                "role": p.get("Role"),
                "description": p.get("Description"),
                "timeout": p.get("Timeout"),
                "memory_size": p.get("MemorySize"),
            }
            if "Environment" in p:
                changes["environment_enc"] = self._seal_environment(
                    tx, ctx, row["arn"], p["Environment"].get("Variables")
                )
            sets = {
                k: v for k, v in changes.items() if v is not None or (k == "environment_enc" and "Environment" in p)
            }
            sets["revision_id"] = str(uuid.uuid4())
            sets["last_modified"] = clock.now()
            q.update_function(tx, row["arn"], sets)
            return self._configuration(tx, ctx, self._find(tx, ctx, row["arn"]))

        out = await self.db.write(tx_fn)
        self.runtime.forget(out["FunctionArn"])
        return out

    async def delete_function(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> str:
            ref = self._ref(ctx, p)
            row = self._find(tx, ctx, ref)
            if ref.qualifier is not None:
                raise _invalid("$LATEST version cannot be deleted without deleting the function.")
            q.delete_function(tx, row["arn"])
            return str(row["arn"])

        arn = await self.db.write(tx_fn)
        self.runtime.kill_all(arn)  # running workers too, and their credentials revoked
        return {"StatusCode": 204}

    async def invoke(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:

        kind = p.get("InvocationType", "RequestResponse")
        payload = p.get("Payload") or b"{}"
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            raise AWSError(
                "InvalidRequestContentException", "Could not parse request body into json: Unexpected character.", 400
            ) from None

        def tx_fn(tx: Tx) -> FunctionSpec:
            ref = self._ref(ctx, p)
            if ref.name in BUILTINS and ref.account == ctx.account_id:
                # They act with the rotation role's rights on whatever secret the event names, so
                # only Secrets Manager and the account's root (who holds those rights) may run them.
                if ctx.authz is not None and not ctx.authz.privileged(ctx, "lambda"):
                    raise _invalid(f"{ref.name} is a strongroom built-in function; only Secrets Manager invokes it.")
                spec = self.resolve(tx, ctx.account_id, ctx.region, p["FunctionName"])
                if spec is None:
                    raise _not_found(ref.qualified_arn)
                return spec
            row = self._find(tx, ctx, ref)
            return self._spec(tx, ctx.account_id, ctx.region, row)

        spec = await self.db.read(tx_fn)
        if kind == "DryRun":
            return {"StatusCode": 204}
        if kind == "Event":
            self.runtime.submit(spec, event)
            return {"StatusCode": 202}
        result = await self.runtime.invoke_async(spec, event)  # its own bounded pool, not the default executor
        out: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        if result.ok:
            out["Payload"] = json.dumps(result.result).encode()
        else:
            out["FunctionError"] = "Unhandled"
            out["Payload"] = json.dumps(result.error).encode()
        if p.get("LogType") == "Tail":
            out["LogResult"] = base64.b64encode(result.logs.encode()[-4096:]).decode()
        return out

    async def add_permission(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            row = self._find(tx, ctx, self._ref(ctx, p))
            statements = json.loads(row["policy"])
            sid = p["StatementId"]
            if any(s["Sid"] == sid for s in statements):
                raise AWSError(
                    "ResourceConflictException",
                    f"The statement id ({sid}) provided already exists. Please provide a new statement id, "
                    "or remove the existing statement.",
                    409,
                )
            principal = p["Principal"]
            statement: dict[str, Any] = {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": principal}
                if principal.endswith(".amazonaws.com")
                else ("*" if principal == "*" else {"AWS": principal}),
                "Action": p["Action"],
                "Resource": row["arn"],
            }
            conditions: dict[str, Any] = {}
            if "SourceArn" in p:
                conditions["ArnLike"] = {"AWS:SourceArn": p["SourceArn"]}
            if "SourceAccount" in p:
                conditions["StringEquals"] = {"AWS:SourceAccount": p["SourceAccount"]}
            if conditions:
                statement["Condition"] = conditions
            statements.append(statement)
            q.set_policy(tx, row["arn"], json.dumps(statements), str(uuid.uuid4()))
            return {"Statement": json.dumps(statement)}

        return await self.db.write(tx_fn)

    async def remove_permission(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            row = self._find(tx, ctx, self._ref(ctx, p))
            statements = json.loads(row["policy"])
            kept = [s for s in statements if s["Sid"] != p["StatementId"]]
            if len(kept) == len(statements):
                raise AWSError(
                    "ResourceNotFoundException", f"Statement {p['StatementId']} is not found in resource policy.", 404
                )
            q.set_policy(tx, row["arn"], json.dumps(kept), str(uuid.uuid4()))
            return {}

        return await self.db.write(tx_fn)

    async def get_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            row = self._find(tx, ctx, self._ref(ctx, p))
            statements = json.loads(row["policy"])
            if not statements:
                raise AWSError("ResourceNotFoundException", "The resource you requested does not exist.", 404)
            document = {"Version": "2012-10-17", "Id": "default", "Statement": statements}
            return {"Policy": json.dumps(document), "RevisionId": row["revision_id"]}

        return await self.db.read(tx_fn)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
