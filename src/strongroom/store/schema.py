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
    # 2: Lambda functions, their permissions and invocation logs (the Lambda issue fills this in).
    [],
    # 3: rotation jobs, attempts and history (the rotation engine fills this in).
    [],
]
