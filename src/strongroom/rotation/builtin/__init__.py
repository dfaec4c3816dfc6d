"""Built-in rotation functions: PostgreSQL and MySQL/MariaDB, single user and alternating users.

They follow AWS's rotation templates step for step (same event, same secret JSON, same use of
the Secrets Manager API), so a secret rotated by one can be rotated by the other.
"""
