"""CloudTrail: LookupEvents over the audit trail's ``audit_events`` table.

The caller sees its own account's and region's records, newest first, 50 at most a page.
CloudTrail's rules: one lookup attribute at most (``InvalidLookupAttributesException``), a start
time after the end time is ``InvalidTimeRangeException``, a page token that is not one of ours is
``InvalidNextTokenException``. The token is the ``id`` of the page's last record (the table's own
key, so pages never skip or repeat a record, whatever is written meanwhile). Records are written
by :mod:`strongroom.audit`; the query is :func:`strongroom.store.audit_events.lookup`.
"""

from __future__ import annotations

import json
from typing import Any

from strongroom.audit.records import _epoch
from strongroom.context import RequestContext
from strongroom.errors import AWSError
from strongroom.store import Database, Tx, audit_events

__all__ = ["OPERATIONS", "CloudTrail"]

OPERATIONS = ["LookupEvents"]


class CloudTrail:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.handlers = {"LookupEvents": self.lookup_events}

    async def lookup_events(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        columns = {
            "EventId": "event_id",
            "EventName": "event_name",
            "ReadOnly": "read_only",
            "Username": "username",
            "ResourceType": "resource_type",
            "ResourceName": "resource_name",
            "EventSource": "event_source",
            "AccessKeyId": "access_key_id",
        }
        attributes = p.get("LookupAttributes", [])
        if len(attributes) > 1:
            raise AWSError("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
        match: tuple[str, Any] | None = None
        for attribute in attributes:
            column = columns[attribute["AttributeKey"]]
            value: Any = attribute["AttributeValue"]
            if column == "read_only":
                value = 1 if value.lower() == "true" else 0
            match = (column, value)
        if "StartTime" in p and "EndTime" in p and p["StartTime"] > p["EndTime"]:
            raise AWSError("InvalidTimeRangeException", "Start time should not be greater than end time.")
        limit = min(int(p.get("MaxResults", 50)), 50)
        token = p.get("NextToken")
        before = None
        if token is not None:
            try:
                before = int(token)
            except ValueError:
                raise AWSError("InvalidNextTokenException", "Invalid NextToken.") from None
            if not 0 < before < 2**63:  # an event id: outside a 64-bit column's range is no token of ours
                raise AWSError("InvalidNextTokenException", "Invalid NextToken.")

        def tx_fn(tx: Tx) -> dict[str, Any]:
            rows = audit_events.lookup(
                tx, ctx.account_id, ctx.region, match, p.get("StartTime"), p.get("EndTime"), before, limit + 1
            )
            events = []
            for _, text in rows[:limit]:
                r = json.loads(text)
                identity = r.get("userIdentity", {})
                events.append(
                    {
                        "EventId": r["eventID"],
                        "EventName": r["eventName"],
                        "ReadOnly": str(r["readOnly"]).lower(),
                        "AccessKeyId": identity.get("accessKeyId"),
                        "EventSource": r["eventSource"],
                        "EventTime": _epoch(r["eventTime"]),
                        "Username": identity.get("userName") or identity.get("arn"),
                        "Resources": [
                            {"ResourceType": x["type"], "ResourceName": x["ARN"]} for x in r.get("resources", [])
                        ],
                        "CloudTrailEvent": text,
                    }
                )
            out: dict[str, Any] = {"Events": events}
            if len(rows) > limit:
                out["NextToken"] = str(rows[limit - 1][0])
            return out

        return await self.db.read(tx_fn)
