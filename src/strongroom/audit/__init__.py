"""The audit trail: one CloudTrail-format record per API call and per service event.

:mod:`~strongroom.audit.records` makes the records (CloudTrail's shape, nothing secret in them);
:mod:`~strongroom.audit.trail` writes them, failing closed and committing them in batches;
:mod:`~strongroom.audit.files` appends them to JSON-lines files in CloudTrail's layout. The SQL is
:mod:`strongroom.store.audit_events`; LookupEvents is :mod:`strongroom.services.cloudtrail`. This
package only re-exports.
"""

from strongroom.audit.records import (
    REDACTED_MEMBERS,
    api_call_record,
    is_read_only,
    new_event_id,
    new_id,
    service_event_record,
)
from strongroom.audit.trail import AuditTrail

__all__ = [
    "REDACTED_MEMBERS",
    "AuditTrail",
    "api_call_record",
    "is_read_only",
    "new_event_id",
    "new_id",
    "service_event_record",
]
