"""LiveQuery: Parse's realtime protocol over WebSocket (see server.py, docs/livequery.md)."""

from bastion.livequery.server import MAX_MESSAGE_BYTES, Interest, LiveQuery, channel_name

__all__ = ["MAX_MESSAGE_BYTES", "Interest", "LiveQuery", "channel_name"]
