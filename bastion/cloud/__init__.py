"""Cloud code: server logic in plain Python, loaded by ``bastion serve --cloud main.py``.

    from bastion import cloud

    @cloud.define("hello")
    def hello(request):
        return "Hello " + request.params.get("name", "world")

See docs/cloud-code.md for functions, triggers, validators, jobs and the data API.
"""

from bastion.cloud.acl import ACL
from bastion.cloud.errors import Error
from bastion.cloud.files import File
from bastion.cloud.objects import Installation, Object, Role, Session, User
from bastion.cloud.query import Query
from bastion.cloud.registry import (
    after_delete,
    after_delete_file,
    after_event,
    after_find,
    after_find_file,
    after_login,
    after_logout,
    after_save,
    after_save_file,
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
from bastion.cloud.request import Request

__all__ = [
    "ACL",
    "Error",
    "File",
    "Installation",
    "Object",
    "Query",
    "Request",
    "Role",
    "Session",
    "User",
    "after_delete",
    "after_delete_file",
    "after_find_file",
    "after_event",
    "after_find",
    "after_login",
    "after_logout",
    "after_save",
    "after_save_file",
    "before_connect",
    "before_delete",
    "before_delete_file",
    "before_find_file",
    "before_find",
    "before_login",
    "before_save",
    "before_save_file",
    "before_subscribe",
    "define",
    "job",
    "track_event",
]
