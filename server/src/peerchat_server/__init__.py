"""peerchat-server: the asyncio relay that fans every message out to all other peers."""

__version__ = "0.1.0"
