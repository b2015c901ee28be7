"""LiveQuery: Parse's realtime protocol over WebSocket (see hub.py, docs/livequery.md)."""

from bastion.livequery.endpoint import MAX_MESSAGE_BYTES
from bastion.livequery.hub import LiveQuery, channel_name
from bastion.livequery.subscriptions import Interest, parse_class_list

__all__ = ["MAX_MESSAGE_BYTES", "Interest", "LiveQuery", "channel_name", "parse_class_list"]
