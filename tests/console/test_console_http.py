"""The console over HTTP: its cookies, its headers, and the attacks a session must withstand
(CSRF, login CSRF, session fixation, open redirects, a key revoked while signed in, a session
signed out). Each test drives a real server with an HTTP client that keeps cookies, as a browser
does, and asserts what that client gets back."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import os
import re
import sqlite3
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from strongroom import config
from strongroom.server.build import build
from strongroom.testing import ServerProcess, postgres_schema

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _session_cookie(response: requests.Response) -> str:
    header = response.headers.get("set-cookie", "")
    assert "strongroom-console=" in header, header
    return header


def test_sign_in_sets_a_strict_http_only_session_cookie(console: Any, console_server: ServerProcess) -> None:
    answer = console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/secrets"
    cookie = next(c for c in console.http.cookies if c.name == "strongroom-console")
    header = answer.headers["set-cookie"]
    session_part = header[header.index("strongroom-console=") :]
    attributes = [a.strip() for a in session_part.split(",")[0].split(";")]
    assert "HttpOnly" in attributes
    assert "SameSite=Strict" in attributes
    assert "Path=/console" in attributes
    assert "Secure" not in attributes  # plain HTTP on loopback; set under TLS
    assert len(cookie.value) >= 40
    page = console.get("/console/secrets")
    assert page.status_code == 200
    assert console_server.secret_access_key not in page.text
    assert cookie.value not in page.text  # the token never reaches the page, only the cookie


@pytest.mark.parametrize("path", ["/console/sign-in", "/console/secrets", "/console/audit", "/console/nope"])
def test_every_page_carries_the_security_headers(console: Any, console_server: ServerProcess, path: str) -> None:
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    answer = console.get(path)
    assert answer.headers["content-security-policy"] == CSP
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert "<script>" not in answer.text and " on" + "click=" not in answer.text  # no inline script at all
    if path == "/console/nope":
        assert answer.status_code == 404


def test_assets_are_served_by_strongroom(console: Any) -> None:
    js = console.get("/console/static/console.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    css = console.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for other in ("app.py", "%2e%2e/app.py", "..%2fapp.py", "console.js/"):
        assert console.get("/console/static/" + other).status_code == 404


def test_a_visitor_is_sent_to_sign_in_with_the_page_to_return_to(console: Any) -> None:
    answer = console.get("/console/audit?value=x")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=%2Fconsole%2Faudit%3Fvalue%3Dx"


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("/console/audit", "/console/audit"),
        ("https://evil.example/", "/console/secrets"),
        ("//evil.example/console/", "/console/secrets"),
        ("/console/\\evil.example", "/console/secrets"),
        ("/elsewhere", "/console/secrets"),
    ],
)
def test_no_open_redirect_after_sign_in(console: Any, console_server: ServerProcess, target: str, lands: str) -> None:
    answer = console.sign_in(console_server.access_key_id, console_server.secret_access_key, quote(target, safe=""))
    assert answer.status_code == 303
    assert answer.headers["location"] == lands


def _create_form(console: Any, name: str) -> dict[str, str]:
    page = console.get("/console/secrets/new")
    return {"csrf": console.csrf(page), "name": name, "value": "v"}


def test_a_state_changing_request_without_the_csrf_token_is_refused(
    console: Any, console_server: ServerProcess
) -> None:
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    sm = console_server.client()
    name = f"csrf/{uuid.uuid4().hex[:8]}"
    form = _create_form(console, name)

    for data, headers in [
        ({k: v for k, v in form.items() if k != "csrf"}, {}),  # no token
        ({**form, "csrf": "x" * 43}, {}),  # a made-up token
        (form, {"Origin": "https://evil.example"}),  # the right token from another site's page
        (form, {"Sec-Fetch-Site": "cross-site"}),
    ]:
        answer = console.post("/console/secrets/new", data, headers=headers)
        assert answer.status_code == 403
        assert "Refused" in answer.text
        with pytest.raises(sm.exceptions.ResourceNotFoundException):
            sm.describe_secret(SecretId=name)

    answer = console.post("/console/secrets/new", form, headers={"Origin": console.endpoint})
    assert answer.status_code == 303
    assert sm.describe_secret(SecretId=name)["Name"] == name


def test_another_sessions_csrf_token_does_not_pass(console: Any, console_server: ServerProcess) -> None:
    other = type(console)(console.endpoint)
    other.sign_in(console_server.access_key_id, console_server.secret_access_key)
    stolen = other.csrf(other.get("/console/secrets/new"))
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    answer = console.post("/console/secrets/new", {"csrf": stolen, "name": "csrf/x", "value": "v"})
    assert answer.status_code == 403


def test_sign_in_from_another_site_is_refused(console: Any, console_server: ServerProcess) -> None:
    """Login CSRF: a cross-site form posting the attacker's key must not sign the victim in."""
    data = {
        "access_key_id": console_server.access_key_id,
        "secret_access_key": console_server.secret_access_key,
        "region": "us-east-1",
    }
    answer = console.post("/console/sign-in", data)  # no sign-in cookie, no token
    assert answer.status_code == 403
    assert "came from another site" in answer.text
    assert "strongroom-console=" not in answer.headers.get("set-cookie", "").replace("strongroom-console-signin=", "")
    page = console.get("/console/sign-in")
    answer = console.post(
        "/console/sign-in", {**data, "csrf": console.csrf(page)}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403


def test_a_session_id_chosen_before_sign_in_is_never_adopted(console: Any, console_server: ServerProcess) -> None:
    planted = "attacker-chosen-session-token-0123456789abcdef"
    console.http.cookies.set("strongroom-console", planted, path="/console")
    answer = console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    header = _session_cookie(answer)
    assert planted not in header
    attacker = requests.get(
        console.endpoint + "/console/secrets",
        cookies={"strongroom-console": planted},
        allow_redirects=False,
        timeout=30,
    )
    assert attacker.status_code == 303 and attacker.headers["location"].startswith("/console/sign-in")


def test_a_secret_typed_into_the_key_id_field_is_not_logged(console: Any, console_server: ServerProcess) -> None:
    pasted = f"pasted/{uuid.uuid4().hex}/secret"
    for key_id, secret in [(pasted, "anything"), ("AKIA€", "x"), (console_server.access_key_id, "sécret€")]:
        answer = console.sign_in(key_id, secret)
        assert answer.status_code == 401
        assert "The access key ID or the secret access key is wrong." in answer.text
    log = console_server.log()
    assert pasted not in log
    assert "console sign-in refused for key (not an access key id): " in log


def test_a_wrong_key_gets_one_clear_line_and_no_session(console: Any, console_server: ServerProcess) -> None:
    answer = console.sign_in(console_server.access_key_id, "wrong-secret-key")
    assert answer.status_code == 401
    assert "The access key ID or the secret access key is wrong." in answer.text
    assert "strongroom-console=" not in answer.headers.get("set-cookie", "").replace("strongroom-console-signin", "")
    answer = console.sign_in("AKIANOSUCHKEY0000000", "wrong-secret-key")
    assert answer.status_code == 401
    assert "The access key ID or the secret access key is wrong." in answer.text
    form = console.get("/console/sign-in")
    answer = console.post(
        "/console/sign-in",
        {
            "csrf": console.csrf(form),
            "access_key_id": console_server.access_key_id,
            "secret_access_key": console_server.secret_access_key,
            "region": "mars-north-1",
        },
    )
    assert answer.status_code == 401
    assert "Credential should be scoped to a valid region, not &#39;mars-north-1&#39;." in answer.text


def test_signing_out_ends_the_session_everywhere(console: Any, console_server: ServerProcess) -> None:
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    token = next(c.value for c in console.http.cookies if c.name == "strongroom-console")
    page = console.get("/console/secrets")
    answer = console.post("/console/sign-out", {"csrf": console.csrf(page)})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?notice=signed-out"
    replay = requests.get(
        console.endpoint + "/console/secrets", cookies={"strongroom-console": token}, allow_redirects=False, timeout=30
    )
    assert replay.status_code == 303 and replay.headers["location"].startswith("/console/sign-in")


def test_a_deactivated_key_stops_the_console_at_once(console: Any, console_server: ServerProcess, reader: Any) -> None:
    console.sign_in(reader.access_key_id, reader.secret_access_key)
    assert console.get("/console/secrets").status_code == 200
    console_server.client("iam").update_access_key(
        UserName=reader.name, AccessKeyId=reader.access_key_id, Status="Inactive"
    )
    answer = console.get("/console/secrets")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?notice=expired"


def test_temporary_credentials_sign_in_with_their_session_token(console: Any, console_server: ServerProcess) -> None:
    iam = console_server.client("iam")
    role = f"console-{uuid.uuid4().hex[:8]}"
    account = console_server.client("sts").get_caller_identity()["Account"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    creds = console_server.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="web"
    )["Credentials"]
    assert console.sign_in(creds["AccessKeyId"], creds["SecretAccessKey"]).status_code == 401  # token missing
    answer = console.sign_in(creds["AccessKeyId"], creds["SecretAccessKey"], session_token=creds["SessionToken"])
    assert answer.status_code == 303
    page = console.get("/console/secrets")
    assert f"arn:aws:sts::{account}:assumed-role/{role}/web" in page.text
    # The role has no policy: the page shows the API's refusal.
    assert page.status_code == 400 or page.status_code == 403
    assert "AccessDeniedException" in page.text
    assert "is not authorized to perform: secretsmanager:ListSecrets" in page.text


def test_sessions_are_stored_as_hashes(console: Any, console_server: ServerProcess) -> None:
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    token = next(c.value for c in console.http.cookies if c.name == "strongroom-console")
    db = sqlite3.connect(f"file:{console_server.data_dir / 'strongroom.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT token_hash, access_key_id, principal_arn FROM console_sessions").fetchall()
    finally:
        db.close()
    assert (hashlib.sha256(token.encode()).hexdigest(), console_server.access_key_id) in [(r[0], r[1]) for r in rows]
    assert all(token not in json.dumps(r) for r in rows)
    assert all(console_server.secret_access_key not in json.dumps(r) for r in rows)
    raw = b"".join(p.read_bytes() for p in console_server.data_dir.glob("strongroom.db*"))
    assert token.encode() not in raw


def test_the_value_reaches_the_page_only_from_the_retrieve_button(console: Any, console_server: ServerProcess) -> None:
    sm = console_server.client()
    name = f"value/{uuid.uuid4().hex[:8]}"
    arn = sm.create_secret(Name=name, SecretString="only-after-the-button")["ARN"]
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    page = console.get("/console/secret", params={"id": arn})
    assert page.status_code == 200 and name in page.text
    assert "only-after-the-button" not in page.text
    answer = console.post(
        "/console/secret/value", {"csrf": console.csrf(page), "id": arn, "version_stage": "AWSCURRENT"}
    )
    assert answer.status_code == 200
    assert "only-after-the-button" in answer.text
    assert answer.headers["cache-control"] == "no-store"
    # Not a GET: a link, a prefetch or a history entry cannot fetch a value.
    assert console.get("/console/secret/value", params={"id": arn}).status_code == 404


def test_a_form_too_large_is_refused_without_a_5xx(console: Any, console_server: ServerProcess) -> None:
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    answer = console.post("/console/secrets/new", {"csrf": "x", "value": "v" * (300 * 1024)})
    assert answer.status_code == 413
    assert console.http.request("DELETE", console.endpoint + "/console/secrets", timeout=30).status_code == 405


def test_sessions_work_on_every_node_of_a_shared_database(pg_url: str, console: Any) -> None:
    Console = type(console)  # the fixture's class, for clients of two other servers
    shared = {"STRONGROOM_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    with (
        postgres_schema(pg_url.split("?", 1)[0]) as url,
        ServerProcess(database_url=url, env=shared) as a,
        ServerProcess(database_url=url, env=shared) as b,
    ):
        on_a = Console(a.endpoint)
        on_a.sign_in(a.access_key_id, a.secret_access_key)
        token = next(c.value for c in on_a.http.cookies if c.name == "strongroom-console")
        on_b = Console(b.endpoint)
        on_b.http.cookies.set("strongroom-console", token, path="/console")
        assert on_b.get("/console/secrets").status_code == 200
        page = on_b.get("/console/secrets/new")
        on_a.post("/console/sign-out", {"csrf": on_a.csrf(on_a.get("/console/secrets"))})
        # Signed out on a: the same cookie is worth nothing on b at once, for pages and for forms.
        assert on_b.get("/console/secrets").headers["location"].startswith("/console/sign-in")
        answer = on_b.post("/console/secrets/new", {"csrf": on_b.csrf(page), "name": "x", "value": "v"})
        assert answer.headers["location"] == "/console/sign-in?notice=expired"


def test_secrets_come_in_pages_sorted_as_asked(console: Any, console_server: ServerProcess) -> None:
    sm = console_server.client()
    prefix = f"paged-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}/{i:02d}" for i in range(23)]
    for name in names:
        sm.create_secret(Name=name, SecretString="v")
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)

    def listed(page: requests.Response) -> list[str]:
        return re.findall(r">(" + re.escape(prefix) + r"/\d\d)</a>", page.text)

    query = {"key": "name", "search": prefix, "sort_by": "name", "order": "desc"}
    first = console.get("/console/secrets", params=query)
    assert first.status_code == 200
    assert listed(first) == sorted(names, reverse=True)[:20]
    assert "First page" not in first.text
    next_url = html.unescape(re.search(r'href="([^"]+)">Next page', first.text).group(1))  # type: ignore[union-attr]
    second = console.get(next_url)
    assert listed(second) == sorted(names, reverse=True)[20:]
    assert "Next page" not in second.text and "First page" in second.text

    # Planned deletions appear only when asked for.
    sm.delete_secret(SecretId=names[0], RecoveryWindowInDays=7)
    assert names[0] not in listed(console.get("/console/secrets", params={**query, "order": "asc"}))
    with_deleted = console.get("/console/secrets", params={**query, "order": "asc", "deleted": "1"})
    assert with_deleted.status_code == 200
    assert listed(with_deleted)[0] == names[0]
    assert "deletion planned" in with_deleted.text


def test_the_session_cookie_is_secure_under_tls(tmp_path: Any) -> None:
    """Served over HTTPS (the ASGI scope's scheme, as uvicorn sets it with --tls-*), the cookies
    carry ``Secure``. In process: this branch's server has no TLS listener of its own."""
    server = build(config.Settings(data_dir=tmp_path / "data", account_id="123456789012"))
    app = server.app
    assert app.console is not None
    secret = server.keys.lookup(server.admin_access_key_id).secret_access_key  # type: ignore[union-attr]

    async def request(method: str, path: str, body: bytes = b"", cookie: str = "") -> tuple[int, dict[str, str], bytes]:
        headers = [(b"host", b"console.example"), (b"content-type", b"application/x-www-form-urlencoded")]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "scheme": "https",
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        start = sent[0]
        found: dict[str, str] = {}
        for k, v in start["headers"]:
            found.setdefault(k.decode(), v.decode())
        return start["status"], found, b"".join(m.get("body", b"") for m in sent[1:])

    async def flow() -> str:
        status, headers, body = await request("GET", "/console/sign-in")
        assert status == 200
        signin_cookie = headers["set-cookie"]
        assert "Secure" in signin_cookie.split("; ")
        token = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()  # type: ignore[union-attr]
        form = {
            "csrf": token,
            "access_key_id": server.admin_access_key_id,
            "secret_access_key": secret,
            "region": "us-east-1",
            "next": "/console/secrets",
        }
        status, headers, _ = await request(
            "POST", "/console/sign-in", urlencode(form).encode(), cookie=signin_cookie.split(";")[0]
        )
        assert status == 303, _
        return headers["set-cookie"]

    try:
        session_cookie = asyncio.run(flow())
    finally:
        server.db.close()
    assert session_cookie.startswith("strongroom-console=")
    assert {"HttpOnly", "SameSite=Strict", "Secure", "Path=/console"} <= set(session_cookie.split("; "))


def test_a_sign_in_is_in_the_trail_as_get_caller_identity(
    console: Any, console_server: ServerProcess, reader: Any
) -> None:
    console.sign_in(reader.access_key_id, reader.secret_access_key)
    events = console_server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": reader.access_key_id}]
    )["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    [sign_in] = [r for r in records if r["eventName"] == "GetCallerIdentity"]
    assert sign_in["userAgent"].startswith("strongroom-console/")
    assert sign_in["userIdentity"]["arn"].endswith(f":user/{reader.name}")
    assert reader.secret_access_key not in json.dumps(records)


def test_bad_input_on_every_page_is_the_apis_refusal_never_a_5xx(
    console: Any, console_server: ServerProcess, reader: Any
) -> None:
    sm = console_server.client()
    name = f"bad/{uuid.uuid4().hex[:8]}"
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    csrf = console.csrf(console.get("/console/secrets/new"))

    missing = console.get("/console/secret", params={"id": "no/such/secret"})
    assert missing.status_code == 400
    assert "ResourceNotFoundException" in missing.text
    assert "Secrets Manager can't find the specified secret." in html.unescape(missing.text)
    assert console.get("/console/rotation", params={"id": "no/such/secret"}).status_code == 400
    assert console.get("/console/secret").status_code == 400  # no id at all
    event = console.get("/console/audit/event", params={"id": str(uuid.uuid4())})
    assert event.status_code == 404 and "No such event." in event.text
    assert console.get("/console/audit", params={"start": "yesterday"}).status_code == 400

    cases = [
        ("/console/secrets/new", {"name": "", "value": "v"}),
        ("/console/secrets/new", {"name": name, "value": "v"}),  # exists
        ("/console/secret/move-label", {"id": arn, "label": "AWSCURRENT", "to_version": "no-such-version"}),
        ("/console/secret/delete", {"id": arn, "days": "3"}),
        ("/console/secret/delete", {"id": arn, "days": "soon"}),
        ("/console/secret/policy", {"id": arn, "policy": "{not json"}),
        ("/console/secret/tag", {"id": arn, "tag_key": "", "tag_value": "x"}),
        ("/console/rotation/configure", {"id": arn, "schedule_kind": "days", "schedule": "x", "window": ""}),
        ("/console/rotation/configure", {"id": arn, "schedule_kind": "expression", "schedule": "rate(0 days)"}),
        ("/console/rotation/rotate", {"id": arn}),  # no function configured
        ("/console/identities/key-status", {"key": "AKIANOSUCHKEY0000000", "status": "Inactive", "user": "nobody"}),
    ]
    for path, form in cases:
        answer = console.post(path, {"csrf": csrf, **form})
        assert 400 <= answer.status_code < 500, (path, form, answer.status_code, answer.text[:300])
        assert 'role="alert"' in answer.text, (path, form)
    assert sm.describe_secret(SecretId=name).get("DeletedDate") is None

    # A user who may not list users is told so on the identities page, which still renders.
    other = type(console)(console.endpoint)
    other.sign_in(reader.access_key_id, reader.secret_access_key)
    page = other.get("/console/identities")
    assert page.status_code == 200
    assert f"user/{reader.name} is not authorized to perform: iam:ListUsers" in page.text


def test_rotation_on_a_cron_schedule_with_a_window(console: Any, console_server: ServerProcess) -> None:
    from strongroom.testing.functions import create_function

    sm = console_server.client()
    name = f"cron/{uuid.uuid4().hex[:8]}"
    created = sm.create_secret(Name=name, SecretString="v")
    arn = created["ARN"]
    function = create_function(
        console_server.client("lambda"), console_server.client("iam"), f"cron-{uuid.uuid4().hex[:8]}"
    )
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    page = console.get("/console/rotation", params={"id": arn})
    assert page.status_code == 200 and function in page.text  # offered from ListFunctions
    form = {
        "csrf": console.csrf(page),
        "id": arn,
        "function": function,
        "schedule_kind": "expression",
        "schedule": "cron(0 4 ? * MON *)",
        "window": "3h",
    }  # "immediately" unchecked: no rotation now
    answer = console.post("/console/rotation/configure", form)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/rotation?" + urlencode({"id": arn, "notice": "rotation"})
    described = sm.describe_secret(SecretId=arn)
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"] == function
    assert described["RotationRules"]["ScheduleExpression"] == "cron(0 4 ? * MON *)"
    assert described["RotationRules"]["Duration"] == "3h"
    # Not rotated: only testSecret runs (docs/rotation.md, RotateImmediately=false).
    assert sm.get_secret_value(SecretId=arn)["VersionId"] == created["VersionId"]
    shown = console.get(answer.headers["location"])
    assert "cron(0 4 ? * MON *)" in shown.text and "(window 3h)" in shown.text
    cancelled = console.post("/console/rotation/cancel", {"csrf": console.csrf(shown), "id": arn})
    assert cancelled.status_code == 303
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is False


def test_signing_in_again_ends_the_previous_session(console: Any, console_server: ServerProcess, reader: Any) -> None:
    console.sign_in(console_server.access_key_id, console_server.secret_access_key)
    first = next(c.value for c in console.http.cookies if c.name == "strongroom-console")
    console.sign_in(reader.access_key_id, reader.secret_access_key)
    second = next(c.value for c in console.http.cookies if c.name == "strongroom-console")
    assert second != first
    assert f"user/{reader.name}" in console.get("/console/secrets").text
    replay = requests.get(
        console.endpoint + "/console/secrets", cookies={"strongroom-console": first}, allow_redirects=False, timeout=30
    )
    assert replay.status_code == 303 and replay.headers["location"].startswith("/console/sign-in")
