"""The audit trail: CloudTrail-format records for every call, readable with LookupEvents."""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from botocore.exceptions import ClientError


def test_every_call_is_recorded_and_found_with_lookup_events(server, sm, name):
    marker = "VALUE-" + uuid.uuid4().hex
    arn = sm.create_secret(Name=name, SecretString=marker)["ARN"]
    sm.get_secret_value(SecretId=name)
    with pytest.raises(ClientError):
        sm.get_secret_value(SecretId=name + "-missing")
    trail = server.client("cloudtrail")
    # As on AWS, a secret's resource name in the trail is its ARN.
    events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}])["Events"]
    by_name = {e["EventName"]: e for e in events}
    assert {"CreateSecret", "GetSecretValue"} <= set(by_name)
    created = json.loads(by_name["CreateSecret"]["CloudTrailEvent"])
    assert created["eventSource"] == "secretsmanager.amazonaws.com"
    assert created["eventType"] == "AwsApiCall" and created["readOnly"] is False
    assert created["requestParameters"]["name"] == name
    assert created["userIdentity"]["accessKeyId"] == server.access_key_id
    assert created["recipientAccountId"] == "123456789012" and created["awsRegion"] == "us-east-1"
    assert by_name["GetSecretValue"]["ReadOnly"] == "true"
    for event in events:
        assert marker not in event["CloudTrailEvent"]
    refused = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name + "-missing"}]
    )["Events"]
    record = json.loads(refused[0]["CloudTrailEvent"])
    assert record["errorCode"] == "ResourceNotFoundException"
    assert record["errorMessage"] == "Secrets Manager can't find the specified secret."


def test_lookup_events_filters_and_pages(server, sm, name):
    for i in range(3):
        sm.create_secret(Name=f"{name}-{i}", SecretString="v")
    trail = server.client("cloudtrail")
    page = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateSecret"}], MaxResults=2
    )
    assert len(page["Events"]) == 2 and "NextToken" in page
    assert all(e["EventName"] == "CreateSecret" for e in page["Events"])
    following = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateSecret"}],
        MaxResults=2,
        NextToken=page["NextToken"],
    )
    assert not {e["EventId"] for e in page["Events"]} & {e["EventId"] for e in following["Events"]}
    with pytest.raises(ClientError) as exc:
        trail.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "EventName", "AttributeValue": "A"},
                {"AttributeKey": "Username", "AttributeValue": "B"},
            ]
        )
    assert exc.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_records_of_answered_reads_survive_kill_9(engine, request, tmp_path):
    """Records of reads are committed without waiting for an fsync (docs/access.md), but always
    before the answer leaves: killing the server the moment it answered loses none of them."""
    from strongroom.testing import ServerProcess, postgres_schema

    with contextlib.ExitStack() as stack:
        url = None
        if engine == "postgresql":  # a schema of its own: the shared one belongs to another master key
            url = stack.enter_context(postgres_schema(request.getfixturevalue("pg_url").split("?")[0]))
        _reads_survive_kill_9(ServerProcess(database_url=url, data_dir=tmp_path / "data"))


def _reads_survive_kill_9(srv) -> None:  # type: ignore[no-untyped-def]
    name = f"audit-kill-{uuid.uuid4().hex[:8]}"
    srv.start()
    try:
        sm = srv.client()
        arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
        read_ids = [sm.get_secret_value(SecretId=name)["ResponseMetadata"]["RequestId"] for _ in range(20)]
        srv.kill()
        srv.start()
        trail = srv.client("cloudtrail")
        found = set()
        for page in trail.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}]
        ):
            found |= {json.loads(e["CloudTrailEvent"])["requestID"] for e in page["Events"]}
        assert set(read_ids) <= found
    finally:
        srv.stop()


def _source_ip_seen(srv, claimed: str) -> str:  # type: ignore[no-untyped-def]
    """GetSecretValue sent with ``X-Forwarded-For: claimed``; the address its audit record names."""
    sm = srv.client()
    name = f"xff-{uuid.uuid4().hex[:8]}"
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]

    def forwarded(request, **_):  # type: ignore[no-untyped-def]
        request.headers["X-Forwarded-For"] = claimed

    sm.meta.events.register("before-send.secrets-manager.GetSecretValue", forwarded)
    request_id = sm.get_secret_value(SecretId=name)["ResponseMetadata"]["RequestId"]
    events = srv.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}]
    )["Events"]
    [record] = [
        json.loads(e["CloudTrailEvent"]) for e in events if json.loads(e["CloudTrailEvent"])["requestID"] == request_id
    ]
    return record["sourceIPAddress"]  # type: ignore[no-any-return]


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(sqlite_server):
    """The client's address decides aws:SourceIp and the audit's sourceIPAddress: a local process
    must not be able to claim another one."""
    from strongroom.testing import ServerProcess

    assert _source_ip_seen(sqlite_server, "10.9.8.7") == "127.0.0.1"
    with ServerProcess(extra_args=["--trusted-proxies", "127.0.0.1"]) as behind_proxy:
        assert _source_ip_seen(behind_proxy, "10.9.8.7") == "10.9.8.7"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_burst_larger_than_one_insert_statement_is_recorded_whole(engine, request, tmp_path):
    """3,000 records in one batch (more parameters than one SQLite statement may carry) are all
    stored and all found."""
    import asyncio

    from strongroom.audit import AuditTrail, api_call_record
    from strongroom.context import RequestContext
    from strongroom.store import open_database
    from strongroom.testing import postgres_schema

    with contextlib.ExitStack() as stack:
        url = str(tmp_path / "burst.db")
        if engine == "postgresql":
            url = stack.enter_context(postgres_schema(request.getfixturevalue("pg_url").split("?")[0]))
        db = open_database(url)
        stack.callback(db.close)
        trail = AuditTrail(db, tmp_path / "audit")
        stack.callback(trail.close)
        marker = uuid.uuid4().hex
        ctx = RequestContext("123456789012", "us-east-1", "arn:aws:iam::123456789012:root", marker)

        async def burst() -> None:  # one turn of the event loop: one batch
            await asyncio.gather(
                *(
                    trail.record(
                        api_call_record(ctx, "secretsmanager", "GetSecretValue", {"SecretId": f"s{i}"}, None, None)
                    )
                    for i in range(3000)
                )
            )

        asyncio.run(burst())
        stored = db.read_sync(
            lambda tx: tx.one("SELECT count(*) FROM audit_events WHERE record LIKE ?", (f"%{marker}%",))
        )[0]
        lines = sum(path.read_text().count(marker) for path in (tmp_path / "audit").rglob("*.jsonl"))
        assert (stored, lines) == (3000, 3000)
