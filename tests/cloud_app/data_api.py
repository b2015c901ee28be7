"""Cloud functions that use the server-side data API (cloud.Object, cloud.Query, cloud.User,
cloud.Role), called by tests/api/test_cloud_data_api.py through POST /functions/... .

Every function takes the test's class name (``cls``, a CloudData* name) and answers what it saw.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bastion import cloud

Q = cloud.Query


def _ids(objects: list[cloud.Object]) -> list[str]:
    return sorted(obj.get("name") for obj in objects)


async def _error(awaitable: Any) -> dict[str, Any] | None:
    """The cloud.Error an awaitable raised (code and message), None when it succeeded."""
    try:
        await awaitable
    except cloud.Error as exc:
        return {"code": exc.code, "error": exc.message, "isCloudError": isinstance(exc, cloud.Error)}
    return None


async def _value_or_error(awaitable: Any) -> Any:
    try:
        return await awaitable
    except cloud.Error as exc:
        return {"code": exc.code, "error": exc.message}


@cloud.define("dataCrud")
async def data_crud(request: cloud.Request) -> dict[str, Any]:
    cls = request.params["cls"]
    when = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    obj = cloud.Object(cls, {"name": "first", "score": 1, "when": when, "tags": ["a"]})
    await obj.save(use_master_key=True)
    created = {"id": obj.id, "hasCreatedAt": obj.created_at is not None,
               "updatedIsCreated": obj.updated_at == obj.created_at, "dirty": obj.dirty()}
    obj.increment("score", 4)
    obj.add_unique("tags", "b")
    obj.set("name", "second")
    await obj.save(use_master_key=True)
    after_update = {"score": obj.get("score"), "tags": obj.get("tags"), "name": obj.get("name")}
    fresh = cloud.Object.pointer(cls, obj.id)
    await fresh.fetch(use_master_key=True)
    fetched = {"score": fresh.get("score"), "name": fresh.get("name"), "when": fresh.get("when").isoformat(),
               "whenIsDatetime": isinstance(fresh.get("when"), datetime)}
    fresh.unset("tags")
    await fresh.save(use_master_key=True)
    unset = (await Q(cls).get(obj.id, use_master_key=True)).get("tags")
    await obj.destroy(use_master_key=True)
    gone = await _error(Q(cls).get(obj.id, use_master_key=True))
    return {"created": created, "updated": after_update, "fetched": fetched, "unset": unset, "gone": gone}


@cloud.define("dataAcl")
async def data_acl(request: cloud.Request) -> dict[str, Any]:
    cls = request.params["cls"]
    private = cloud.Object(cls, {"name": "private"})
    private.acl = cloud.ACL()  # nobody but the master key
    await private.save(use_master_key=True)
    public = cloud.Object(cls, {"name": "public"})
    acl = cloud.ACL()
    acl.set_public_read_access(True)
    public.acl = acl
    await public.save(use_master_key=True)
    as_public = await Q(cls).find()
    as_master = await Q(cls).find(use_master_key=True)
    stranger = cloud.Object.pointer(cls, private.id).set("name", "hacked")
    return {
        "publicSees": _ids(as_public),
        "masterSees": _ids(as_master),
        "publicGet": await _error(Q(cls).get(private.id)),
        "publicFetch": await _error(cloud.Object.pointer(cls, private.id).fetch()),
        "publicUpdate": await _error(stranger.save()),
        "publicUpdateReadOnly": await _error(cloud.Object.pointer(cls, public.id).set("name", "x").save()),
        "publicDelete": await _error(cloud.Object.pointer(cls, private.id).destroy()),
        "masterUpdate": await _error(cloud.Object.pointer(cls, private.id).set("name", "mastered")
                                     .save(use_master_key=True)),
        "publicCount": await Q(cls).count(),
        "masterCount": await Q(cls).count(use_master_key=True),
        "aclOnObject": private.acl.to_json() if private.acl else None,
    }


@cloud.define("dataAsCaller")
async def data_as_caller(request: cloud.Request) -> dict[str, Any]:
    """Writes and reads as the user who called (``session_token=request.session_token``)."""
    cls = request.params["cls"]
    token = request.session_token
    mine = cloud.Object(cls, {"name": "mine"})
    mine.acl = cloud.ACL(request.user)
    await mine.save(session_token=token)
    return {
        "user": request.user.id if request.user else None,
        "asCaller": _ids(await Q(cls).find(session_token=token)),
        "asPublic": _ids(await Q(cls).find()),
        "fetchAsCaller": (await cloud.Object.pointer(cls, mine.id).fetch(session_token=token)).get("name"),
        "updateAsCaller": await _error(cloud.Object.pointer(cls, mine.id).set("n", 1).save(session_token=token)),
        "badToken": await _error(Q(cls).find(session_token="r:not-a-session")),
    }


@cloud.define("dataTriggers")
async def data_triggers(request: cloud.Request) -> dict[str, Any]:
    """CloudScore's triggers (tests/cloud_app/triggers.py) run for data-API writes and queries."""
    marker = request.params["marker"]
    score = cloud.Object("CloudScore", {"score": 2, "name": "shout", "marker": marker, "dropMe": 1})
    await score.save(context={"tag": "from-data-api"})
    created = {"name": score.get("name"), "checked": score.get("checked"), "existed": score.get("existed"),
               "sawMaster": score.get("sawMaster"), "contextTag": score.get("contextTag"),
               "dropMe": score.get("dropMe"), "hasDropMe": "dropMe" in score}
    score.set("score", 7)
    await score.save(use_master_key=True)
    updated = {"sawOriginal": score.get("sawOriginal"), "existed": score.get("existed"),
               "sawMaster": score.get("sawMaster")}
    refused = await _error(cloud.Object("CloudScore", {"score": -5, "marker": marker}).save())
    hidden = cloud.Object("CloudScore", {"score": 1, "marker": marker, "hidden": True})
    await hidden.save()
    protected = cloud.Object("CloudScore", {"score": 1, "marker": marker, "protected": True})
    await protected.save()
    found = await Q("CloudScore").equal_to("marker", marker).find()
    return {
        "created": created,
        "updated": updated,
        "refused": refused,
        "foundCount": len(found),
        "decorated": all(obj.get("decorated") for obj in found),
        "protectedDelete": await _error(protected.destroy(use_master_key=True)),
    }


async def _seed(cls: str) -> dict[str, cloud.Object]:
    """Objects of ``cls`` for the operator tests (and a CloudDataOwner class for pointers)."""
    owners = [cloud.Object(cls + "Owner", {"name": name, "rank": rank}) for name, rank in (("ann", 1), ("bob", 2))]
    await cloud.Object.save_all(owners, use_master_key=True)
    rows = [
        {"name": "a", "n": 1, "grp": 1, "s": "apple pie", "arr": ["x", "y"], "at": datetime(2020, 1, 1, tzinfo=UTC),
         "loc": {"__type": "GeoPoint", "latitude": 10.0, "longitude": 10.0}, "owner": owners[0],
         "area": {"__type": "Polygon", "coordinates": [[0, 0], [0, 20], [20, 20], [20, 0]]},
         "text": "the quick brown fox"},
        {"name": "b", "n": 2, "grp": 1, "s": "Apple tart", "arr": ["y", "z"], "at": datetime(2021, 1, 1, tzinfo=UTC),
         "loc": {"__type": "GeoPoint", "latitude": 11.0, "longitude": 11.0}, "owner": owners[1],
         "area": {"__type": "Polygon", "coordinates": [[30, 30], [30, 40], [40, 40], [40, 30]]},
         "text": "lazy dogs sleep"},
        {"name": "c", "n": 3, "grp": 2, "s": "banana.split", "arr": ["xylophone", "zebra"], "at": datetime(2022, 1, 1, tzinfo=UTC),
         "loc": {"__type": "GeoPoint", "latitude": 50.0, "longitude": 50.0}, "owner": owners[0],
         "text": "quick thinking foxes"},
        {"name": "d", "n": 4, "grp": 2, "s": "cherry", "arr": [], "extra": True},
    ]
    objects = {row["name"]: cloud.Object(cls, row) for row in rows}
    await cloud.Object.save_all(list(objects.values()), use_master_key=True)
    return {**objects, "ann": owners[0], "bob": owners[1]}


@cloud.define("dataOperators")
async def data_operators(request: cloud.Request) -> dict[str, Any]:
    cls = request.params["cls"]
    seeded = await _seed(cls)
    ann = seeded["ann"]
    near = {"__type": "GeoPoint", "latitude": 10.0, "longitude": 10.0}

    async def names(query: cloud.Query) -> list[str]:
        return _ids(await query.find(use_master_key=True))

    owners_rank1 = Q(cls + "Owner").equal_to("rank", 1)
    results: dict[str, Any] = {
        "equal_to": await names(Q(cls).equal_to("n", 2)),
        "equal_to_dict": await names(Q(cls).equal_to({"n": 2, "name": "b"})),
        "equal_to_date": await names(Q(cls).equal_to("at", datetime(2021, 1, 1, tzinfo=UTC))),
        "equal_to_pointer": await names(Q(cls).equal_to("owner", ann)),
        "equal_to_array_item": await names(Q(cls).equal_to("arr", "y")),
        "not_equal_to": await names(Q(cls).not_equal_to("n", 2)),
        "less_than": await names(Q(cls).less_than("n", 2)),
        "less_than_or_equal_to": await names(Q(cls).less_than_or_equal_to("n", 2)),
        "greater_than": await names(Q(cls).greater_than("n", 3)),
        "greater_than_or_equal_to": await names(Q(cls).greater_than_or_equal_to("n", 3)),
        "range": await names(Q(cls).greater_than("n", 1).less_than("n", 4)),
        "date_range": await names(Q(cls).greater_than("at", datetime(2020, 6, 1, tzinfo=UTC))),
        "contained_in": await names(Q(cls).contained_in("n", [1, 3, 9])),
        "not_contained_in": await names(Q(cls).not_contained_in("n", [1, 3])),
        "contained_in_pointers": await names(Q(cls).contained_in("owner", [seeded["bob"]])),
        "contains_all": await names(Q(cls).contains_all("arr", ["x", "y"])),
        # $all of ^\Q…\E expressions (kept behind _value_or_error: an error would come back as cloud.Error).
        "contains_all_starting_with": await _value_or_error(
            names(Q(cls).contains_all_starting_with("arr", ["xy", "ze"]))),
        "contained_by": await names(Q(cls).contained_by("arr", ["x", "y", "z"])),
        "exists": await names(Q(cls).exists("extra")),
        "does_not_exist": await names(Q(cls).does_not_exist("loc")),
        "matches": await names(Q(cls).matches("s", "^apple")),
        "matches_i": await names(Q(cls).matches("s", "^apple", "i")),
        "matches_pattern": await names(Q(cls).matches("s", re.compile("^APPLE", re.IGNORECASE))),
        "starts_with": await names(Q(cls).starts_with("s", "Apple")),
        "ends_with": await names(Q(cls).ends_with("s", "pie")),
        "contains": await names(Q(cls).contains("s", "a.s")),
        "contains_literal_dot": await names(Q(cls).contains("s", ".")),
        "full_text": await names(Q(cls).full_text("text", "quick")),
        "full_text_options": await names(Q(cls).full_text("text", "dogs", language="english",
                                                           case_sensitive=False, diacritic_sensitive=True)),
        # As Parse Server on PostgreSQL, a diacritic-insensitive search is refused (107).
        "full_text_diacritics": await _value_or_error(
            names(Q(cls).full_text("text", "dogs", diacritic_sensitive=False))),
        "near": [o.get("name") for o in await Q(cls).near("loc", (49.0, 49.0)).find(use_master_key=True)],
        "within_kilometers": await names(Q(cls).within_kilometers("loc", near, 200)),
        "within_miles": await names(Q(cls).within_miles("loc", near, 200, sorted=False)),
        "within_radians": await names(Q(cls).within_radians("loc", near, 0.05)),
        "within_geo_box": await names(Q(cls).within_geo_box("loc", (5, 5), (12, 12))),
        "within_polygon": await names(Q(cls).within_polygon("loc", [(0, 0), (0, 30), (30, 30), (30, 0)])),
        "polygon_contains": await names(Q(cls).polygon_contains("area", (35, 35))),
        "matches_query": await names(Q(cls).matches_query("owner", owners_rank1)),
        "does_not_match_query": await names(Q(cls).does_not_match_query("owner", owners_rank1)),
        "matches_key_in_query": await names(
            Q(cls).matches_key_in_query("n", "rank", Q(cls + "Owner").equal_to("name", "bob"))),
        "does_not_match_key_in_query": await names(
            Q(cls).does_not_match_key_in_query("n", "rank", Q(cls + "Owner"))),
        "or": await names(Q.or_(Q(cls).equal_to("n", 1), Q(cls).equal_to("n", 4))),
        "and": await names(Q.and_(Q(cls).greater_than("n", 1), Q(cls).less_than("n", 4))),
        "nor": await names(Q.nor(Q(cls).equal_to("n", 1), Q(cls).equal_to("n", 4))),
        "ascending": [o.get("name") for o in await Q(cls).descending("n").ascending("n").find(use_master_key=True)],
        "descending": [o.get("name") for o in await Q(cls).descending("n").find(use_master_key=True)],
        "add_descending": [o.get("n") for o in
                           await Q(cls).ascending("grp").add_descending("n").find(use_master_key=True)],
        "limit_skip": [o.get("name") for o in
                       await Q(cls).ascending("n").set_skip(1).set_limit(2).find(use_master_key=True)],
    }
    selected = await Q(cls).equal_to("name", "a").select("n").first(use_master_key=True)
    excluded = await Q(cls).equal_to("name", "a").exclude("s", "arr").first(use_master_key=True)
    results["select"] = sorted(selected.keys()) if selected else None
    results["exclude"] = sorted(excluded.keys()) if excluded else None
    try:
        Q.or_(Q(cls), Q(cls + "Owner"))
        results["or_mixed_classes"] = None
    except ValueError as exc:
        results["or_mixed_classes"] = str(exc)
    return results


@cloud.define("dataReads")
async def data_reads(request: cloud.Request) -> dict[str, Any]:
    """include, count, first, get, distinct, aggregate."""
    cls = request.params["cls"]
    seeded = await _seed(cls)
    with_owner = await Q(cls).equal_to("name", "a").include_key("owner").first(use_master_key=True)
    without = await Q(cls).equal_to("name", "a").first(use_master_key=True)
    owner = with_owner.get("owner") if with_owner else None
    plain_owner = without.get("owner") if without else None
    got = await Q(cls).get(seeded["b"].id, use_master_key=True)
    fetched = cloud.Object.pointer(cls, seeded["c"].id)
    await fetched.fetch(use_master_key=True, include="owner")
    refetched = [cloud.Object.pointer(cls, seeded[n].id) for n in ("a", "d")]
    await cloud.Object.fetch_all(refetched, use_master_key=True)
    return {
        "includedClass": type(owner).__name__ if owner else None,
        "includedName": owner.get("name") if owner else None,
        "notIncludedName": plain_owner.get("name") if plain_owner else "missing",
        "notIncludedId": plain_owner.id if plain_owner else None,
        "fetchIncluded": fetched.get("owner").get("name"),
        "fetchAll": [o.get("name") for o in refetched],
        "count": await Q(cls).count(use_master_key=True),
        "countWhere": await Q(cls).greater_than("n", 2).count(use_master_key=True),
        "first": (await Q(cls).ascending("n").first(use_master_key=True)).get("name"),
        "firstNone": await Q(cls).equal_to("n", 99).first(use_master_key=True),
        "get": got.get("name"),
        "getMissing": await _error(Q(cls).get("nope", use_master_key=True)),
        "getOutsideQuery": await _error(Q(cls).equal_to("n", 1).get(seeded["b"].id, use_master_key=True)),
        "distinct": sorted(await Q(cls).distinct("n")),
        "distinctWhere": sorted(await Q(cls).greater_than("n", 2).distinct("n")),
        "aggregate": await Q(cls).greater_than("n", 1).aggregate([{"$group": {"_id": None, "total": {"$sum": "$n"}}}]),
        "aggregatePublic": await _error(Q(cls).aggregate([{"$match": {}}], use_master_key=False)),
    }


@cloud.define("dataEach")
async def data_each(request: cloud.Request) -> dict[str, Any]:
    cls = request.params["cls"]
    total = request.params.get("total", 25)
    objects = [cloud.Object(cls, {"name": f"o{i:03d}", "i": i}) for i in range(total)]
    await cloud.Object.save_all(objects, use_master_key=True)
    seen: list[int] = []
    batches: list[int] = []

    async def take(obj: cloud.Object) -> None:
        seen.append(obj.get("i"))

    await Q(cls).each(take, batch_size=10, use_master_key=True)
    await Q(cls).each_batch(lambda batch: batches.append(len(batch)), batch_size=10, use_master_key=True)
    iterated = [obj.get("i") async for obj in Q(cls).greater_than("i", 4).iterate(batch_size=7, use_master_key=True)]
    public = [obj async for obj in Q(cls)]  # the class has no ACL: the public sees everything
    all_found = await Q(cls).find_all(batch_size=6, use_master_key=True)
    refused = await _error(Q(cls).ascending("i").each(take, use_master_key=True))
    await cloud.Object.destroy_all(objects[:5], use_master_key=True)
    return {"seen": sorted(seen), "seenCount": len(seen), "batches": batches, "iterated": sorted(iterated),
            "public": len(public), "findAll": len(all_found), "sortedRefused": refused,
            "afterDestroyAll": await Q(cls).count(use_master_key=True)}


@cloud.define("dataUsersRoles")
async def data_users_roles(request: cloud.Request) -> dict[str, Any]:
    cls = request.params["cls"]
    username = request.params["username"]
    user = await cloud.User.sign_up(username, "pw-" + username, email=f"{username}@example.com", level=3)
    token = user.session_token
    logged = await cloud.User.log_in(username, "pw-" + username)
    become = await cloud.User.become(logged.session_token)
    bad_login = await _error(cloud.User.log_in(username, "wrong"))
    duplicate = await _error(cloud.User.sign_up(username, "x"))
    # A role, its users relation, and an object only that role may read.
    role_acl = cloud.ACL()
    role_acl.set_public_read_access(True)
    role = cloud.Role(cls + "Members", role_acl)
    role.users.add(user)
    await role.save(use_master_key=True)
    members = await role.users.query().find(use_master_key=True)
    secret = cloud.Object(cls, {"name": "for-members"})
    acl = cloud.ACL()
    acl.set_role_read_access(role, True)
    secret.acl = acl
    await secret.save(use_master_key=True)
    # A parent role whose members include the first role's members (inheritance).
    parent = cloud.Role(cls + "Parent", role_acl)
    parent.roles.add(role)
    await parent.save(use_master_key=True)
    parent_only = cloud.Object(cls, {"name": "for-parent"})
    acl2 = cloud.ACL()
    acl2.set_role_read_access(cls + "Parent", True)
    parent_only.acl = acl2
    await parent_only.save(use_master_key=True)
    bad_role = await _error(cloud.Role("bad/name", role_acl).save(use_master_key=True))
    rename = cloud.Role.pointer("_Role", role.id)
    rename.set("name", "renamed")
    renamed = await _error(rename.save(use_master_key=True))
    # The user's own record: updates through the users service.
    user.set("level", 4)
    await user.save(session_token=token)
    other_update = await _error(cloud.User.pointer("_User", user.id).set("level", 9).save())
    seen_by_user = _ids(await Q(cls).find(session_token=token))
    seen_by_public = _ids(await Q(cls).find())
    role.users.remove(user)
    await role.save(use_master_key=True)
    after_removal = _ids(await Q(cls).find(session_token=token))
    logged_token = logged.session_token
    await logged.log_out()
    return {
        "userClass": type(user).__name__,
        "userId": user.id,
        "hasToken": bool(token and token.startswith("r:")),
        "noPassword": "password" not in user._server,
        "loggedInId": logged.id,
        "loggedInEmail": logged.email,
        "becomeId": become.id,
        "badLogin": bad_login,
        "duplicate": duplicate,
        "roleClass": type(role).__name__,
        "roleName": role.name,
        "members": [m.id for m in members],
        "seenByUser": seen_by_user,
        "seenByPublic": seen_by_public,
        "afterRemoval": after_removal,
        "badRole": bad_role,
        "renamed": renamed,
        "level": (await Q(cloud.User).get(user.id, use_master_key=True)).get("level"),
        "otherUpdate": other_update,
        "loggedOutBecome": await _error(cloud.User.become(logged_token or "")),
    }


@cloud.define("dataRelations")
async def data_relations(request: cloud.Request) -> dict[str, Any]:
    cls = request.params["cls"]
    items = [cloud.Object(cls + "Item", {"name": n}) for n in ("x", "y", "z")]
    await cloud.Object.save_all(items, use_master_key=True)
    parent = cloud.Object(cls, {"name": "parent"})
    parent.relation("likes").add(items)
    await parent.save(use_master_key=True)
    first = _ids(await parent.relation("likes").query().find(use_master_key=True))
    parent.relation("likes").remove(items[0])
    parent.relation("likes").add(items[0])
    parent.relation("likes").remove(items[1])
    batch_op = parent.changes()["likes"]["__op"]
    await parent.save(use_master_key=True)
    fresh = cloud.Object.pointer(cls, parent.id)
    second = _ids(await fresh.relation("likes").query().find(use_master_key=True))
    related = _ids(await Q(cls + "Item").related_to(parent, "likes").find(use_master_key=True))
    in_relation = _ids(await Q(cls).equal_to("likes", items[2]).find(use_master_key=True))
    return {"first": first, "batchOp": batch_op, "second": second, "related": related, "inRelation": in_relation,
            "relationValue": parent.get("likes")}


@cloud.define("dataErrors")
async def data_errors(request: cloud.Request) -> dict[str, Any]:
    cls = request.params["cls"]
    await cloud.Object(cls, {"name": "typed"}).save(use_master_key=True)
    return {
        "missingClassPublic": await _error(cloud.Object(cls + "Nope", {"a": 1}).save()),
        "badQuery": await _error(Q(cls).matches("name", "(unclosed").find(use_master_key=True)),
        "wrongType": await _error(cloud.Object(cls, {"name": 5}).save(use_master_key=True)),
        "updateMissing": await _error(cloud.Object.pointer(cls, "missing1").set("a", 1).save(use_master_key=True)),
        "fetchUnsaved": await _error(cloud.Object(cls).fetch()),
        "fetchAllMissing": await _error(cloud.Object.fetch_all([cloud.Object.pointer(cls, "missing2")],
                                                               use_master_key=True)),
    }


@cloud.define("dataUnhandled")
async def data_unhandled(request: cloud.Request) -> None:
    """A data-API error the function does not catch reaches the client as that Parse error."""
    await Q(request.params["cls"]).get("nothing-here", use_master_key=True)


@cloud.define("dataSessions")
async def data_sessions(request: cloud.Request) -> dict[str, Any]:
    """Opens a session for the caller with its token, as ``POST /sessions`` with that token does
    (the server sets the user, the token, the expiry), changes it, and closes it."""
    token = request.session_token
    session = cloud.Session({"note": "from cloud code", "sessionToken": "r:chosen",
                             "user": cloud.Object.pointer("_User", request.params["other"])})
    await session.save(session_token=token)
    user = session.get("user")
    opened = {"token": session.get("sessionToken"), "user": user.id if isinstance(user, cloud.Object) else None,
              "createdWith": session.get("createdWith"), "note": session.get("note"),
              "expires": isinstance(session.get("expiresAt"), datetime), "hasId": bool(session.id)}
    fetched = await cloud.Session.pointer("_Session", session.id).fetch(session_token=token)
    changed = await _error(session.set("note", "changed").save(session_token=token))
    return {
        "opened": opened,
        "sessionId": session.id,
        "fetchedNote": fetched.get("note"),
        "changed": changed,
        "serverField": await _error(cloud.Object.pointer("_Session", session.id)
                                    .set("expiresAt", datetime(2999, 1, 1, tzinfo=UTC)).save(session_token=token)),
        "withAcl": await _error(cloud.Session({"ACL": {"*": {"read": True}}}).save(session_token=token)),
        "public": await _error(cloud.Session({"note": "nobody's"}).save()),
        "publicDestroy": await _error(cloud.Object.pointer("_Session", session.id).destroy()),
    }


@cloud.define("dataSessionClose")
async def data_session_close(request: cloud.Request) -> dict[str, Any]:
    """Closes one of the caller's sessions with the caller's token."""
    return {"closed": await _error(cloud.Object.pointer("_Session", request.params["id"])
                                   .destroy(session_token=request.session_token))}
