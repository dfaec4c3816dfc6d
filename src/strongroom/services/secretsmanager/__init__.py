"""AWS Secrets Manager."""

from strongroom.services.secretsmanager.service import SecretsManager

__all__ = ["SecretsManager"]
