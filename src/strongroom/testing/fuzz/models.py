"""The botocore models the campaign draws from, what strongroom serves of them, and how each service
is signed and framed.
"""

from __future__ import annotations

import botocore.session

# --------------------------------------------------------------------------------- the models

_SESSION = botocore.session.get_session()
MODELS = {name: _SESSION.get_service_model(name) for name in ("secretsmanager", "lambda", "iam", "sts", "cloudtrail")}
SIGNING = {
    "secretsmanager": "secretsmanager",
    "lambda": "lambda",
    "iam": "iam",
    "sts": "sts",
    "cloudtrail": "cloudtrail",
}
FORMAT = {"secretsmanager": "json", "cloudtrail": "json", "lambda": "rest-json", "iam": "query", "sts": "query"}
TARGET_PREFIX = {"secretsmanager": "secretsmanager", "cloudtrail": MODELS["cloudtrail"].metadata["targetPrefix"]}

try:  # the operations this server answers; the rest of each model is "unserved"
    from strongroom.services.iam import OPERATIONS as _IAM
    from strongroom.services.lambda_ import OPERATIONS as _LAMBDA
    from strongroom.services.sts import OPERATIONS as _STS
except ImportError:  # pragma: no cover - run outside the project's virtualenv
    _IAM, _LAMBDA, _STS = ["ListUsers"], ["ListFunctions"], ["GetCallerIdentity"]

SERVED = {
    "secretsmanager": sorted(MODELS["secretsmanager"].operation_names),
    "lambda": list(_LAMBDA),
    "iam": list(_IAM),
    "sts": list(_STS),
    "cloudtrail": ["LookupEvents"],
}
# A fixed sample of operations the models have and strongroom does not serve (must be a clean 4xx).
UNSERVED = {
    "secretsmanager": [],
    "lambda": ["ListAliases", "PublishVersion", "GetAccountSettings", "ListTags", "CreateAlias", "ListLayers"],
    "iam": ["ListGroups", "CreateGroup", "GetAccountSummary", "ListPolicies", "CreatePolicy", "TagUser"],
    "sts": ["GetSessionToken", "GetFederationToken", "DecodeAuthorizationMessage", "GetAccessKeyInfo"],
    "cloudtrail": [
        "CreateTrail",
        "DescribeTrails",
        "GetTrailStatus",
        "StartLogging",
        "ListTrails",
        "PutEventSelectors",
    ],
}
SERVICE_WEIGHTS = [("secretsmanager", 55), ("lambda", 14), ("iam", 14), ("sts", 6), ("cloudtrail", 11)]
