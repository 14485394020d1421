"""Pseudonymising personal data before it leaves `raw`: a keyed (salted) SHA-256 of normalised values."""

from __future__ import annotations

import hashlib
import hmac

import dagster as dg
from pydantic import Field

MIN_SALT_LENGTH = 16


class PiiHashResource(dg.ConfigurableResource):
    """Hashes personal values (emails) with a secret salt, so core tables can join on them unreadably.

    The hash is HMAC-SHA-256 keyed by the salt over the trimmed, lower-cased value: 64 hex characters.
    """

    salt: str = Field(description="Secret hashing salt, at least 16 characters (PII_HASH_SALT).")

    def hash_email(self, email: str | None) -> str | None:
        if email is None or not email.strip():
            return None
        if len(self.salt) < MIN_SALT_LENGTH:
            raise ValueError(f"PII_HASH_SALT must be at least {MIN_SALT_LENGTH} characters long")
        return hmac.new(self.salt.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()
