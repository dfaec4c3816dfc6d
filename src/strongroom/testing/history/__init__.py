"""A history recorder and checker for Secrets Manager, in the spirit of Jepsen.

Client threads run operations against one or several servers; every operation is recorded with
the moment it was invoked and the moment it completed (one monotonic clock: all clients live in
this process), its arguments, and its outcome:

* ``ok``: the answer came back (``response`` holds it);
* ``fail``: an error the server answered (``error`` is its code), or a connection that was
  refused before the request left (``error`` is ``Unavailable``): the operation did not happen;
* ``info``: indeterminate. A timeout, a connection dropped after the request was sent, or a 5xx
  answer: the operation may or may not have taken effect, at any moment after its invocation.

:func:`check` then returns human-readable violations (an empty list: the history is correct):

1. Model-free rules, on every secret: a read returns only a (VersionId, value) pair some write
   sent, never a value nobody wrote; every snapshot (DescribeSecret, ListSecretVersionIds, and the
   final state) has exactly one AWSCURRENT once the secret has a value, each staging label on at
   most one version, AWSPREVIOUS and AWSCURRENT on different versions, and only versions some
   caller asked for; a PutSecretValue with a fresh token answers ``["AWSCURRENT"]``; an error a
   user should never see in this workload is a violation.
2. The final state (read with :func:`read_final_state` once the writers stopped): every
   acknowledged PutSecretValue, UpdateSecret and CreateSecret is readable by its VersionId with
   exactly the value written. strongroom keeps AWS's retention rule (the 100 newest versions and
   every version younger than 24 hours stay; ``docs/operations.md``), so for a history shorter
   than a day every version must still be there. A ClientRequestToken sent several times
   (retries, same value) makes one version, and AWSPREVIOUS exists once two versions have been
   current.
3. Linearizability, for each secret no rotation touches: some total order of the operations,
   consistent with real time (an operation that completed before another was invoked comes first),
   explains every answer under a model of AWS's rules (a new version takes AWSCURRENT and the
   version that held it gets AWSPREVIOUS; UpdateSecretVersionStage with RemoveFromVersionId
   succeeds only if that version holds the label; a retried token changes nothing). This is what
   checks that the labels move as AWS moves them, that a read sees every write acknowledged before
   it on any node, and that nothing acknowledged is lost across a crash. The search is Wing and
   Gong's, with Lowe's memoisation (as in Knossos and Porcupine); indeterminate operations may
   take effect at any point after their invocation, or never.

Rotations run in the server, not in the history, so a rotated secret gets rules 1 and 2 only; its
rotation function must write ``rotation_value(token)`` (see :data:`ROTATION_FUNCTION`).

:class:`Workload` drives the clients: each thread picks a secret and an operation at random and
records it; requests go round-robin to the servers given.

The modules: :mod:`~strongroom.testing.history.record` (operations and the history),
:mod:`~strongroom.testing.history.workload` (the clients), :mod:`~strongroom.testing.history.check`
(rules 1 and 2) and :mod:`~strongroom.testing.history.linear` (rule 3). This package only
re-exports.
"""

from strongroom.testing.history.check import check
from strongroom.testing.history.record import (
    ROTATION_ENV,
    ROTATION_FUNCTION,
    History,
    Op,
    client_for,
    rotation_value,
)
from strongroom.testing.history.workload import Workload, read_final_state

__all__ = [
    "ROTATION_ENV",
    "ROTATION_FUNCTION",
    "History",
    "Op",
    "Workload",
    "check",
    "client_for",
    "read_final_state",
    "rotation_value",
]
