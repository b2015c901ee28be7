"""The public cloud-code API (``from bastion import cloud``) is exactly this list: adding, renaming or
removing a name is a deliberate change of this test (and of docs/cloud-code.md)."""

from __future__ import annotations

import inspect

from bastion import cloud

PUBLIC = [
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


def test_the_public_names_are_pinned() -> None:
    assert cloud.__all__ == PUBLIC
    assert sorted(PUBLIC) == PUBLIC


def test_every_public_name_exists() -> None:
    for name in PUBLIC:
        assert getattr(cloud, name) is not None, name


def test_no_runtime_name_leaks_into_the_facade() -> None:
    # The runtime is private: nothing public comes from bastion.cloud._runtime.
    for name in PUBLIC:
        module = inspect.getmodule(getattr(cloud, name))
        assert module is not None and not module.__name__.startswith("bastion.cloud._runtime"), name


def test_each_kind_of_request_is_a_request_with_the_common_fields() -> None:
    kinds = [cloud.FunctionRequest, cloud.JobRequest, cloud.ObjectTriggerRequest, cloud.FindTriggerRequest,
             cloud.AuthTriggerRequest, cloud.FileTriggerRequest, cloud.LiveQueryRequest, cloud.EventRequest]
    for kind in kinds:
        assert issubclass(kind, cloud.Request)
        request = kind(trigger_name="x", master=True, ip="1.2.3.4", extra_field=5)
        # the fields of every kind, as one Request class had them
        assert (request.master, request.ip, request.user, request.object, request.query, request.params,
                request.headers, request.context, request.job_id) == (True, "1.2.3.4", None, None, None, {}, {}, {},
                                                                      None)
        assert request.extra_field == 5  # type: ignore[attr-defined]
        assert repr(request) == "<cloud request x>"
