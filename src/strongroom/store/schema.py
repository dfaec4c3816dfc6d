"""Versioned schema migrations, written once for both engines.

Each migration is a list of statements with three placeholders the dialect fills in:
``{pk}`` (an auto-increment integer primary key), ``{blob}`` and ``{real}``. A migration runs in one
transaction and bumps ``schema_version``; migrations are append-only: never edit a released one.

What the schema can enforce, it does:

* ``stages`` has the primary key ``(secret_id, stage)``: a staging label is on at most one version
  of a secret, whatever the code above does;
* a stage points at an existing version of the same secret (composite foreign key);
* ``(account_id, region, name)`` is unique: two secrets never share a name in one namespace.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: list[list[str]] = [
    # 1: the whole first schema.
    [
        """CREATE TABLE kms_keys (
            account_id TEXT NOT NULL,
            region TEXT NOT NULL,
            key_ref TEXT NOT NULL,
            wrapped {blob} NOT NULL,
            created_date {real} NOT NULL,
            PRIMARY KEY (account_id, region, key_ref)
        )""",
        """CREATE TABLE access_keys (
            access_key_id TEXT PRIMARY KEY,
            account_id TEXT NOT NULL,
            principal_arn TEXT NOT NULL,
            secret_enc {blob} NOT NULL,
            status TEXT NOT NULL DEFAULT 'Active',
            created_date {real} NOT NULL
        )""",
        """CREATE TABLE secrets (
            id {pk},
            account_id TEXT NOT NULL,
            region TEXT NOT NULL,
            name TEXT NOT NULL,
            arn TEXT NOT NULL UNIQUE,
            description TEXT,
            kms_key_id TEXT,
            type TEXT,
            created_date {real} NOT NULL,
            last_changed_date {real} NOT NULL,
            last_accessed_date {real},
            deleted_date {real},
            deletion_date {real},
            rotation_enabled INTEGER,
            rotation_lambda_arn TEXT,
            rotation_rules TEXT,
            last_rotated_date {real},
            next_rotation_date {real},
            owning_service TEXT,
            external_metadata TEXT,
            external_role_arn TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            primary_arn TEXT,
            replicas TEXT NOT NULL DEFAULT '[]',
            UNIQUE (account_id, region, name)
        )""",
        "CREATE INDEX secrets_by_created ON secrets (account_id, region, created_date, id)",
        "CREATE INDEX secrets_by_changed ON secrets (account_id, region, last_changed_date, id)",
        "CREATE INDEX secrets_by_deletion ON secrets (deletion_date)",
        """CREATE TABLE versions (
            secret_id BIGINT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
            version_id TEXT NOT NULL,
            created_date {real} NOT NULL,
            last_accessed_date {real},
            value_kind INTEGER NOT NULL,
            key_ref TEXT,
            ciphertext {blob},
            PRIMARY KEY (secret_id, version_id)
        )""",
        """CREATE TABLE stages (
            secret_id BIGINT NOT NULL,
            stage TEXT NOT NULL,
            version_id TEXT NOT NULL,
            PRIMARY KEY (secret_id, stage),
            FOREIGN KEY (secret_id, version_id) REFERENCES versions (secret_id, version_id)
                ON DELETE CASCADE
        )""",
        "CREATE INDEX stages_by_version ON stages (secret_id, version_id)",
        """CREATE TABLE policies (
            secret_id BIGINT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
            policy_name TEXT NOT NULL,
            document TEXT NOT NULL,
            created_date {real} NOT NULL,
            PRIMARY KEY (secret_id, policy_name)
        )""",
    ],
    # 2: Lambda functions and their resource policies. Code is stored as the zip uploaded;
    # the environment (which may hold secrets) is ciphertext under the account's key.
    [
        """CREATE TABLE functions (
            account_id TEXT NOT NULL,
            region TEXT NOT NULL,
            name TEXT NOT NULL,
            arn TEXT NOT NULL UNIQUE,
            runtime TEXT NOT NULL,
            handler TEXT NOT NULL,
            role TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            timeout INTEGER NOT NULL,
            memory_size INTEGER NOT NULL,
            environment_enc {blob},
            code {blob} NOT NULL,
            code_sha256 TEXT NOT NULL,
            code_size BIGINT NOT NULL,
            revision_id TEXT NOT NULL,
            policy TEXT NOT NULL DEFAULT '[]',
            last_modified {real} NOT NULL,
            PRIMARY KEY (account_id, region, name)
        )""",
    ],
    # 3: rotation jobs and the history of their attempts' steps.
    [
        "ALTER TABLE secrets ADD COLUMN rotation_due_at {real}",
        """CREATE TABLE rotations (
            id {pk},
            secret_id BIGINT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
            token TEXT NOT NULL,
            rotation_token TEXT NOT NULL,
            function_arn TEXT NOT NULL,
            immediate INTEGER NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at {real} NOT NULL,
            claimed_by TEXT,
            claimed_until {real},
            created_date {real} NOT NULL,
            finished_date {real},
            last_error TEXT,
            UNIQUE (secret_id, token)
        )""",
        "CREATE INDEX rotations_due ON rotations (state, next_attempt_at)",
        """CREATE TABLE rotation_steps (
            id {pk},
            rotation_id BIGINT NOT NULL REFERENCES rotations (id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            step TEXT NOT NULL,
            started_date {real} NOT NULL,
            duration_ms INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT
        )""",
        "CREATE INDEX rotation_steps_by_rotation ON rotation_steps (rotation_id, id)",
    ],
    # 4: the audit trail (CloudTrail-format records; the columns are what LookupEvents filters on).
    [
        """CREATE TABLE audit_events (
            id {pk},
            event_id TEXT NOT NULL UNIQUE,
            account_id TEXT NOT NULL,
            region TEXT NOT NULL,
            event_time {real} NOT NULL,
            event_name TEXT NOT NULL,
            event_source TEXT NOT NULL,
            read_only INTEGER NOT NULL,
            username TEXT,
            access_key_id TEXT,
            resource_name TEXT,
            resource_type TEXT,
            record TEXT NOT NULL
        )""",
        "CREATE INDEX audit_by_account ON audit_events (account_id, region, id)",
        "CREATE INDEX audit_by_time ON audit_events (event_time)",
    ],
    # 5: identities: IAM users and roles, their inline policies; temporary credentials (STS).
    [
        """CREATE TABLE iam_principals (
            arn TEXT PRIMARY KEY,
            account_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            principal_id TEXT NOT NULL,
            created_date {real} NOT NULL,
            trust_policy TEXT,
            description TEXT,
            max_session INTEGER,
            tags TEXT NOT NULL DEFAULT '[]',
            UNIQUE (account_id, kind, name)
        )""",
        """CREATE TABLE iam_inline_policies (
            principal_arn TEXT NOT NULL,
            account_id TEXT NOT NULL,
            policy_name TEXT NOT NULL,
            document TEXT NOT NULL,
            PRIMARY KEY (principal_arn, policy_name)
        )""",
        "ALTER TABLE access_keys ADD COLUMN session_token_enc {blob}",
        "ALTER TABLE access_keys ADD COLUMN expires_at {real}",
        "CREATE INDEX access_keys_by_principal ON access_keys (principal_arn)",
    ],
    # 6: versions by age, for retention and listing without a scan.
    [
        "CREATE INDEX versions_by_age ON versions (secret_id, created_date)",
    ],
    # 7: every function invocation, with its logs (ciphertext: a function may print anything).
    [
        """CREATE TABLE function_invocations (
            id {pk},
            function_arn TEXT NOT NULL,
            request_id TEXT NOT NULL,
            started_date {real} NOT NULL,
            duration_ms INTEGER NOT NULL,
            step TEXT,
            outcome TEXT NOT NULL,
            error TEXT,
            logs_enc {blob}
        )""",
        "CREATE INDEX invocations_by_function ON function_invocations (function_arn, id)",
    ],
    # 8: cross-account replication. Each side keeps its own view of the link, as on AWS, where
    # either account can end it from its side: a replica its primary (ARN and status), a primary
    # its replicas (ARN, role, status). JSON text, like ``replicas``.
    [
        "ALTER TABLE secrets ADD COLUMN cross_account_primary TEXT",
        "ALTER TABLE secrets ADD COLUMN cross_account_replicas TEXT NOT NULL DEFAULT '[]'",
    ],
    # 9: whether DescribeSecret and ListSecrets answer ``Tags`` when a secret has none. AWS answers
    # no ``Tags`` for a secret never tagged and ``"Tags": []`` once its last tag is removed
    # (LocalStack's AWS-recorded snapshot test_secret_tags), so "no tags" has two states.
    [
        "ALTER TABLE secrets ADD COLUMN tags_member INTEGER NOT NULL DEFAULT 0",
    ],
    # 10: privilege is a fact stored with a credential, never read from the text of its ARN.
    # ``privilege`` is 'root' for an account's root keys, NULL otherwise; ``principal_id`` is the
    # caller's unique id (aws:userid); ``role_arn`` a role session's role. Root keys are the ones
    # whose ARN is exactly the account's root form, long-term (no session token, no expiry): no
    # user, role or session ARN can have that form (they read ...:user/..., ...:sts::...). STS
    # sessions made before session names were validated may carry a forged name ("x:root"): they
    # are all ended, and so are long-term keys that belong to no user (a role session could mint
    # one for itself with CreateAccessKey).
    # ``key_generation`` counts revocations (a key deactivated or deleted, a role deleted): nodes
    # poll it to drop cached credentials at once (strongroom.auth.keys).
    [
        "ALTER TABLE access_keys ADD COLUMN privilege TEXT",
        "ALTER TABLE access_keys ADD COLUMN principal_id TEXT",
        "ALTER TABLE access_keys ADD COLUMN role_arn TEXT",
        "DELETE FROM access_keys WHERE session_token_enc IS NOT NULL OR expires_at IS NOT NULL",
        "UPDATE access_keys SET privilege = 'root', principal_id = account_id "
        "WHERE principal_arn = 'arn:aws:iam::' || account_id || ':root'",
        "UPDATE access_keys SET principal_id = (SELECT p.principal_id FROM iam_principals p "
        "WHERE p.arn = access_keys.principal_arn AND p.kind = 'user' AND p.account_id = access_keys.account_id) "
        "WHERE privilege IS NULL",
        "DELETE FROM access_keys WHERE privilege IS NULL AND principal_id IS NULL",
        "CREATE INDEX access_keys_by_role ON access_keys (role_arn)",
        """CREATE TABLE key_generation (
            id INTEGER PRIMARY KEY,
            generation INTEGER NOT NULL
        )""",
        "INSERT INTO key_generation (id, generation) VALUES (1, 0)",
    ],
    # 11: the master keyring (crypto/ring.py, docs/keys.md): one row per master key, by fingerprint
    # (never the key). Each wrapped key in kms_keys names its member in its header; keys wrapped
    # before this migration belong to member 1, registered at the next start.
    [
        """CREATE TABLE keyring (
            id INTEGER PRIMARY KEY,
            fingerprint TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            description TEXT NOT NULL,
            state TEXT NOT NULL,
            created_date {real} NOT NULL
        )""",
    ],
    # 12: web console sessions (server/console, docs/console.md). A session is found by the SHA-256
    # of its cookie's token, never by the token itself: the table gives a reader no session to
    # use. It names the access key it was opened with; the key is checked again on every request.
    [
        """CREATE TABLE console_sessions (
            token_hash TEXT PRIMARY KEY,
            access_key_id TEXT NOT NULL,
            account_id TEXT NOT NULL,
            principal_arn TEXT NOT NULL,
            region TEXT NOT NULL,
            created_date {real} NOT NULL,
            expires_at {real} NOT NULL
        )""",
        "CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at)",
    ],
]
