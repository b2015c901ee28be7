"""Data sets of ``bench/data_api.py``, the same rows for every server.

Every row is generated from a seed (object ids, points, sentences, relations, ACLs), so Bastion
and Parse Server are loaded with identical data.  Classes are created through each server's REST
API (``POST /schemas``), so each server lays out its own tables; the 100k-row tables are then
bulk-loaded with ``COPY`` into that database, which works because both servers use Parse Server's
PostgreSQL table layout (``objectId``, ``createdAt``, ``updatedAt``, ``_rperm``/``_wperm``, typed
columns, ``point`` for GeoPoints, ``_Join:<field>:<class>`` for relations).  Users and roles go
through the REST API (passwords must be hashed by the server itself).

Standard library only, like ``run.py``.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import math
import random
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from run import APP_ID, BenchError, Postgres, http_json

PLACE = "BenchPlace"  # location (GeoPoint), n
DOC = "BenchDoc"  # body (String), n
OWNER = "BenchOwner"  # name, items (Relation to BenchRelItem)
REL_ITEM = "BenchRelItem"  # n
SECRET = "BenchSecret"  # n, readable by one role each
JOIN_TABLE = f"_Join:items:{OWNER}"

CREATED = "2026-01-01T00:00:00.000Z"
PASSWORD = "bench-password-1"
ROLE_PREFIX = "benchrole"
# The radius Parse Server (and Bastion) use to turn kilometres into radians.
EARTH_RADIUS_KM = 6371.0

# A fixed vocabulary for the generated sentences: common English words, none of them in
# PostgreSQL's English stop-word list (a stop word as a search term matches nothing).
_VOCABULARY = (
    "river mountain forest valley ocean island desert garden meadow harbor village city bridge tower "
    "castle market station library school museum theater kitchen window door table chair lamp mirror "
    "candle blanket pillow basket bottle cup plate spoon knife fork bread cheese apple orange lemon "
    "cherry grape melon carrot potato tomato onion pepper garlic honey sugar salt butter coffee tea "
    "water milk juice soup salad rice pasta pizza cake cookie dog cat horse bird fish rabbit fox wolf "
    "bear deer mouse lion tiger eagle owl snake frog turtle whale dolphin shark bee butterfly spider "
    "tree flower grass leaf root seed stone rock sand cloud rain snow wind storm thunder lightning sun "
    "moon star planet comet galaxy sky light shadow fire smoke ice steam gold silver copper iron wood "
    "glass paper cotton silk wool leather red blue green yellow purple brown black white gray pink "
    "happy quiet brave clever gentle proud calm eager honest kind bright dark warm cold quick slow "
    "strong weak tall short young old ancient modern simple strange famous hidden broken golden "
    "wooden heavy soft sharp smooth rough walk run jump swim climb sing dance paint write read cook "
    "bake build travel explore listen watch dream laugh whisper shout carry throw catch follow "
    "remember forget discover wander gather morning evening night winter summer autumn spring "
    "journey story letter song picture music memory secret promise question answer friend teacher "
    "doctor farmer sailor painter writer singer traveler stranger neighbor king queen prince"
)
WORDS = tuple(_VOCABULARY.split())


@dataclass
class Sizes:
    """How much each data set holds (``--quick`` shrinks them)."""

    points: int = 100_000
    docs: int = 100_000
    owners: int = 1_000
    items: int = 10_000  # items that owners relate to
    per_owner: int = 100  # related items per owner
    secrets: int = 100_000  # objects under ACL
    roles: int = 1_000
    users: int = 200  # users seeded for the login workload
    seed: int = 42


def object_ids(prefix: str, count: int) -> list[str]:
    """Deterministic, unique 10-character object ids (Parse's length)."""
    width = 10 - len(prefix)
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def _csv(rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])  # empty unquoted field = NULL
    return out.getvalue().encode()


def _pg_array(items: Sequence[str]) -> str:
    """A text[] literal of simple items (role names and ids need no escaping)."""
    return "{" + ",".join(items) + "}"


# --------------------------------------------------------------------------- REST helpers


def _check(what: str, status: int, body: Any) -> Any:
    if not 200 <= status < 300:
        raise BenchError(f"{what} -> {status} {str(body)[:300]}")
    return body


def create_class(base: str, name: str, fields: dict[str, dict[str, str]]) -> None:
    status, body = http_json("POST", f"{base}/parse/schemas/{name}", {"className": name, "fields": fields})
    _check(f"POST /schemas/{name}", status, body)


def add_index(base: str, name: str, field: str) -> None:
    status, body = http_json("PUT", f"{base}/parse/schemas/{name}", {"indexes": {f"{field}_1": {field: 1}}})
    _check(f"PUT /schemas/{name} indexes", status, body)


def find(base: str, class_name: str, where: dict[str, Any], *, session: str | None = None,
         **params: Any) -> dict[str, Any]:
    query = {"where": json.dumps(where, separators=(",", ":")), **{k: str(v) for k, v in params.items()}}
    url = f"{base}/parse/classes/{class_name}?{urllib.parse.urlencode(query)}"
    if session is None:
        status, body = http_json("GET", url)
    else:
        status, body = _session_get(url, session)
    result = _check(f"GET /classes/{class_name} {query}", status, body)
    if not isinstance(result, dict):
        raise BenchError(f"GET /classes/{class_name}: unexpected answer {str(result)[:200]}")
    return result


def _session_get(url: str, session: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": session})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")[:300]


def _batch_create(base: str, class_name: str, bodies: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(bodies), 50):
        chunk = bodies[start:start + 50]
        reqs = [{"method": "POST", "path": f"/parse/classes/{class_name}", "body": b} for b in chunk]
        status, body = http_json("POST", f"{base}/parse/batch", {"requests": reqs})
        _check(f"POST /batch ({class_name})", status, body)
        if not isinstance(body, list) or len(body) != len(chunk):
            raise BenchError(f"POST /batch ({class_name}): unexpected answer {str(body)[:300]}")
        for item in body:
            if not isinstance(item, dict) or "objectId" not in item.get("success", {}):
                raise BenchError(f"POST /batch ({class_name}): {str(item)[:300]}")
            ids.append(str(item["success"]["objectId"]))
    return ids


def sign_up(base: str, username: str) -> dict[str, Any]:
    status, body = http_json("POST", f"{base}/parse/users", {"username": username, "password": PASSWORD},
                             master=False)
    result = _check(f"POST /users ({username})", status, body)
    if not isinstance(result, dict) or "sessionToken" not in result:
        raise BenchError(f"POST /users ({username}): no session token in {str(result)[:200]}")
    return result


# --------------------------------------------------------------------------- data sets


def random_point(rng: random.Random) -> tuple[float, float]:
    """(latitude, longitude) uniform over the sphere's surface."""
    lat = math.degrees(math.asin(2 * rng.random() - 1))
    return round(lat, 6), round(rng.uniform(-180, 180), 6)


def places(sizes: Sizes) -> list[tuple[str, float, float]]:
    """(objectId, latitude, longitude) of every place."""
    rng = random.Random(sizes.seed)
    return [(oid, *random_point(rng)) for oid in object_ids("P", sizes.points)]


def load_places(pg: Postgres, db: str, base: str, sizes: Sizes) -> None:
    create_class(base, PLACE, {"location": {"type": "GeoPoint"}, "n": {"type": "Number"}})
    # point(x=longitude, y=latitude), as both servers store GeoPoints
    rows = [(oid, CREATED, CREATED, f"({lng},{lat})", i) for i, (oid, lat, lng) in enumerate(places(sizes))]
    pg.copy_csv(db, PLACE, ["objectId", "createdAt", "updatedAt", "location", "n"], _csv(rows))
    pg.run_sql(db, f'ANALYZE "{PLACE}"')


def haversine(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in radians."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    return 2 * math.asin(min(1.0, math.sqrt(a)))


def sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(6, 12))
    return " ".join([words[0].capitalize(), *words[1:]]) + "."


def load_docs(pg: Postgres, db: str, base: str, sizes: Sizes) -> None:
    create_class(base, DOC, {"body": {"type": "String"}, "n": {"type": "Number"}})
    rng = random.Random(sizes.seed + 1)
    rows = [(oid, CREATED, CREATED, sentence(rng), i) for i, oid in enumerate(object_ids("D", sizes.docs))]
    pg.copy_csv(db, DOC, ["objectId", "createdAt", "updatedAt", "body", "n"], _csv(rows))
    pg.run_sql(db, f'ANALYZE "{DOC}"')


def load_relations(pg: Postgres, db: str, base: str, sizes: Sizes) -> list[str]:
    """Owners each related to ``per_owner`` distinct items; answers the owner ids."""
    create_class(base, REL_ITEM, {"n": {"type": "Number"}})
    create_class(base, OWNER, {"name": {"type": "String"},
                               "items": {"type": "Relation", "targetClass": REL_ITEM}})
    item_ids = object_ids("I", sizes.items)
    owner_ids = object_ids("O", sizes.owners)
    pg.copy_csv(db, REL_ITEM, ["objectId", "createdAt", "updatedAt", "n"],
                _csv((oid, CREATED, CREATED, i) for i, oid in enumerate(item_ids)))
    pg.copy_csv(db, OWNER, ["objectId", "createdAt", "updatedAt", "name"],
                _csv((oid, CREATED, CREATED, f"owner-{i}") for i, oid in enumerate(owner_ids)))
    rng = random.Random(sizes.seed + 2)
    per_owner = min(sizes.per_owner, len(item_ids))
    joins = ((related, owner) for owner in owner_ids for related in rng.sample(item_ids, per_owner))
    pg.copy_csv(db, JOIN_TABLE, ["relatedId", "owningId"], _csv(joins))
    for table in (REL_ITEM, OWNER, JOIN_TABLE):
        pg.run_sql(db, f'ANALYZE "{table}"')
    return owner_ids


def role_name(i: int) -> str:
    return f"{ROLE_PREFIX}{i:04d}"


@dataclass
class AclSetup:
    session: str  # the session token of the user the acl_user workload acts as
    roles: list[str]  # the names of the roles that user holds (directly or inherited)


def load_secrets(pg: Postgres, db: str, base: str, sizes: Sizes) -> AclSetup:
    """``secrets`` objects, object i readable and writable by role i % roles only; ``roles`` roles
    (public read, created through the API); a user who is in three roles and inherits a fourth."""
    create_class(base, SECRET, {"n": {"type": "Number"}})
    rows = []
    for i, oid in enumerate(object_ids("S", sizes.secrets)):
        perm = _pg_array([f"role:{role_name(i % sizes.roles)}"])
        rows.append((oid, CREATED, CREATED, perm, perm, i))
    pg.copy_csv(db, SECRET, ["objectId", "createdAt", "updatedAt", "_rperm", "_wperm", "n"], _csv(rows))
    add_index(base, SECRET, "n")
    pg.run_sql(db, f'ANALYZE "{SECRET}"')

    role_ids = _batch_create(base, "_Role", [{"name": role_name(i), "ACL": {"*": {"read": True}}}
                                             for i in range(sizes.roles)])
    user = sign_up(base, "bench-acl-user")
    rng = random.Random(sizes.seed + 3)
    direct, inherited = (sorted(rng.sample(range(sizes.roles), 3)), rng.randrange(sizes.roles))
    while inherited in direct:
        inherited = (inherited + 1) % sizes.roles
    user_ptr = {"__type": "Pointer", "className": "_User", "objectId": user["objectId"]}
    for i in direct:
        status, body = http_json("PUT", f"{base}/parse/classes/_Role/{role_ids[i]}",
                                 {"users": {"__op": "AddRelation", "objects": [user_ptr]}})
        _check(f"PUT /classes/_Role ({role_name(i)} users)", status, body)
    # Members of a role in the parent's "roles" relation inherit the parent's access.
    child = {"__type": "Pointer", "className": "_Role", "objectId": role_ids[direct[0]]}
    status, body = http_json("PUT", f"{base}/parse/classes/_Role/{role_ids[inherited]}",
                             {"roles": {"__op": "AddRelation", "objects": [child]}})
    _check(f"PUT /classes/_Role ({role_name(inherited)} roles)", status, body)
    return AclSetup(session=str(user["sessionToken"]), roles=[role_name(i) for i in [*direct, inherited]])


def load_users(base: str, sizes: Sizes) -> list[str]:
    """Users for the login workload, signed up through the API (each server hashes its passwords)."""
    names = [f"bench-login-{i:05d}" for i in range(sizes.users)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: sign_up(base, n), names))
    return names


# --------------------------------------------------------------------------- checks


def expected_visible(sizes: Sizes, roles: list[str]) -> int:
    held = {int(r[len(ROLE_PREFIX):]) for r in roles}
    return sum(1 for i in range(sizes.secrets) if i % sizes.roles in held)


def check_counts(base: str, sizes: Sizes, datasets: set[str], acl: AclSetup | None,
                 owner_ids: list[str]) -> list[str]:
    """Read the loaded data back through the API, so a server that reads it differently shows up."""
    problems: list[str] = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{what}: expected {want}, got {got}")

    if "places" in datasets:
        expect("count of places", find(base, PLACE, {}, count=1, limit=0).get("count"), sizes.points)
        rows = places(sizes)
        near = find(base, PLACE, {"location": {"$nearSphere": {"__type": "GeoPoint", "latitude": 10, "longitude": 20},
                                               "$maxDistance": math.pi}}, limit=20)["results"]
        nearest = sorted(rows, key=lambda r: haversine(10, 20, r[1], r[2]))[:20]
        expect("the 20 places nearest to (10, 20)", [r.get("objectId") for r in near], [r[0] for r in nearest])
        box = [{"__type": "GeoPoint", "latitude": -10, "longitude": -10},
               {"__type": "GeoPoint", "latitude": 10, "longitude": 10}]
        got = find(base, PLACE, {"location": {"$within": {"$box": box}}}, count=1, limit=0).get("count")
        expect("places in the box (-10,-10)-(10,10)", got,
               sum(1 for _, lat, lng in rows if -10 <= lat <= 10 and -10 <= lng <= 10))
    if "docs" in datasets:
        expect("count of docs", find(base, DOC, {}, count=1, limit=0).get("count"), sizes.docs)
        word = WORDS[0]
        rng = random.Random(sizes.seed + 1)  # the sentences load_docs generated
        want = sum(1 for _ in range(sizes.docs) if word in sentence(rng).lower().rstrip(".").split())
        got = find(base, DOC, {"body": {"$text": {"$search": {"$term": word}}}}, count=1, limit=0).get("count")
        expect(f"docs matching {word!r}", got, want)
    if "relations" in datasets and owner_ids:
        owner = {"__type": "Pointer", "className": OWNER, "objectId": owner_ids[0]}
        got = find(base, REL_ITEM, {"$relatedTo": {"object": owner, "key": "items"}}, count=1, limit=0).get("count")
        expect("items related to the first owner", got, min(sizes.per_owner, sizes.items))
    if "secrets" in datasets and acl is not None:
        expect("secrets seen with the master key", find(base, SECRET, {}, count=1, limit=0).get("count"),
               sizes.secrets)
        got = find(base, SECRET, {}, session=acl.session, count=1, limit=0).get("count")
        expect("secrets seen by the acl user", got, expected_visible(sizes, acl.roles))
    return problems


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path



def ranked_answers(base: str, datasets: set[str]) -> dict[str, Any]:
    """Answers with no generator-side expectation, for comparing the servers with each other:
    the 20 best text-search scores of a few words (ts_rank_cd, as the text_score workload asks)."""
    answers: dict[str, Any] = {}
    if "docs" in datasets:
        for word in WORDS[1:4]:
            where = {"body": {"$text": {"$search": {"$term": word}}}}
            results = find(base, DOC, where, order="$score", keys="$score,body", limit=20)["results"]
            answers[f"top 20 $score for {word!r}"] = [round(float(r.get("score", -1)), 6) for r in results]
    return answers
