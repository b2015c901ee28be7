"""Cloud code: server logic in plain Python, loaded by ``bastion serve --cloud main.py``.

    from bastion import cloud

    @cloud.define("hello")
    def hello(request):
        return "Hello " + request.params.get("name", "world")

See docs/cloud-code.md for functions, triggers, validators, jobs and the data API. This package is
the public API (``__all__``, pinned by tests/unit/test_cloud_api.py); how the server runs the code
is the private ``bastion.cloud._runtime``.
"""

from bastion.cloud.acl import ACL
from bastion.cloud.decorators import (
    after_delete,
    after_delete_file,
    after_event,
    after_find,
    after_find_file,
    after_login,
    after_logout,
    after_save,
    after_save_file,
    auth_adapter,
    before_connect,
    before_delete,
    before_delete_file,
    before_find,
    before_find_file,
    before_login,
    before_save,
    before_save_file,
    before_subscribe,
    define,
    job,
    track_event,
)
from bastion.cloud.errors import Error
from bastion.cloud.files import File
from bastion.cloud.objects import Object
from bastion.cloud.query import Query
from bastion.cloud.request import (
    AuthTriggerRequest,
    EventRequest,
    FileTriggerRequest,
    FindTriggerRequest,
    FunctionRequest,
    JobRequest,
    LiveQueryRequest,
    ObjectTriggerRequest,
    Request,
)
from bastion.cloud.system_classes import Installation, Role, Session, User
from bastion.domain.auth_providers import AuthAdapter, AuthRequest, AuthResult

__all__ = [
    "ACL",
    "AuthAdapter",
    "AuthRequest",
    "AuthResult",
    "AuthTriggerRequest",
    "Error",
    "EventRequest",
    "File",
    "FileTriggerRequest",
    "FindTriggerRequest",
    "FunctionRequest",
    "Installation",
    "JobRequest",
    "LiveQueryRequest",
    "Object",
    "ObjectTriggerRequest",
    "Query",
    "Request",
    "Role",
    "Session",
    "User",
    "after_delete",
    "after_delete_file",
    "after_event",
    "after_find",
    "after_find_file",
    "after_login",
    "after_logout",
    "after_save",
    "after_save_file",
    "auth_adapter",
    "before_connect",
    "before_delete",
    "before_delete_file",
    "before_find",
    "before_find_file",
    "before_login",
    "before_save",
    "before_save_file",
    "before_subscribe",
    "define",
    "job",
    "track_event",
]
