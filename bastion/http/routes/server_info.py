"""/serverInfo: what this deployment supports, as Parse Server's features router reports it.

Parse Dashboard and several SDKs call it first and switch pages on and off by its ``features``, so
every flag says what Bastion really serves here (nothing is claimed that would answer an error).
"""

from __future__ import annotations

from typing import Any

from bastion import __version__
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import require_master

# The Parse Server release whose REST API and behaviour Bastion follows.
PARSE_SERVER_VERSION = "9.10.0"

_ALL = {"create": True, "read": True, "update": True, "delete": True}


def features() -> dict[str, Any]:
    return {
        "globalConfig": dict(_ALL),  # /config with masterKeyOnly parameters
        "hooks": dict(_ALL),  # /hooks/functions and /hooks/triggers (webhooks)
        "cloudCode": {"jobs": True},  # /cloud_code/jobs and /jobs
        "logs": {"level": True, "size": True, "order": True, "until": True, "from": True},  # /scriptlog
        "push": {
            # Web Push needs no credentials, so every deployment can send; the durable queue holds a
            # push until its push_time, and _PushStatus keeps what was sent.
            "immediatePush": True,
            "scheduledPush": True,
            "storedPushData": True,
            "pushAudiences": True,  # /push_audiences
            "localization": True,  # alert-<locale> / title-<locale>
        },
        "schemas": {
            "addField": True,
            "removeField": True,
            "addClass": True,
            "removeClass": True,
            "clearAllDataFromClass": True,  # DELETE /purge/:className
            "exportClass": False,  # Parse.com's /export_data: Parse Server has none either
            "editClassLevelPermissions": True,
            "editPointerPermissions": True,
        },
        "settings": {"securityCheck": False},  # no /security report (Parse's security.enableCheck)
    }


async def server_info(req: RequestContext) -> Response:
    require_master(req)  # the read-only master key too, as Parse Server's isMaster
    return Response({"features": features(), "parseServerVersion": PARSE_SERVER_VERSION,
                     "bastionVersion": __version__})


def register(router: Router) -> None:
    router.add("GET", "/serverInfo", server_info)
