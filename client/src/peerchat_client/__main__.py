"""``python -m peerchat_client``: the same as the ``peerchat-client`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
