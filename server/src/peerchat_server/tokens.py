"""Session secrets and what may be shown of them: no server imports (a leaf module).

A v3 session's secret is a bearer token (like a cookie); its digest is what other
replicas, the rooms' logs and the catch-up see of it: enough to recognise the
session, not to take it over.
"""

from __future__ import annotations

import hashlib
import secrets

#: Random bytes in a session token (URL-safe base64: 22 characters, 128 bits).
TOKEN_BYTES = 16


def new_token() -> str:
    """A fresh session secret."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(secret: str | None) -> str:
    """What may be shown of a session secret: enough to recognise it, not to use it."""
    if not secret:
        return ""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]
