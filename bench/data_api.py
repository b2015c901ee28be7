#!/usr/bin/env python3
"""Data-API benchmark: geo, full-text, relation, user and ACL workloads, Bastion against Parse Server 9.

Each server (Bastion on PostgreSQL, Parse Server on PostgreSQL, same worker count) gets a fresh
database, the same generated data (``datasets.py``) and the same wrk load (``wrk/<workload>.lua``).
Start-up, measurement and the table come from ``run.py``.  See bench/README.md.

Parse Server on PostgreSQL needs PostGIS for ``$nearSphere`` (``ST_DistanceSphere(…::geometry, …)``),
which a stock PostgreSQL lacks: for the ``near`` workload the harness gives Parse Server's database
(only that one) a stand-in in plain SQL, a ``geometry`` domain over ``point`` and a haversine
``ST_DistanceSphere`` on PostGIS's sphere radius.  Bastion needs nothing (built-in math).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import datasets as ds
from run import (
    APP_ID,
    MASTER_KEY,
    BenchError,
    Options,
    Postgres,
    Seeder,
    SeedTarget,
    add_load_args,
    available_servers,
    csv_list,
    log,
    options_from_args,
    run_matrix,
)

SERVERS = ("bastion-pg", "parse")
# In the order they run on one server: reads first, then login, then signup (which adds users).
WORKLOADS = ("near", "box", "text", "text_score", "related", "acl_master", "acl_user", "login", "signup")
DATASET_OF = {"near": "places", "box": "places", "text": "docs", "text_score": "docs", "related": "relations",
              "acl_master": "secrets", "acl_user": "secrets", "login": "users", "signup": None}

# A stand-in for the one PostGIS function Parse Server's $nearSphere calls, installed in Parse
# Server's benchmark database only: great-circle (haversine) metres on PostGIS's sphere
# (ST_DistanceSphere's radius, 6371008.7714 m); points are (x=longitude, y=latitude).  Not STRICT,
# so PostgreSQL inlines it into the query (ten times faster than calling it); a NULL point still
# gives NULL.
POSTGIS_STAND_IN = (
    "CREATE DOMAIN geometry AS point",
    """CREATE FUNCTION ST_DistanceSphere(a geometry, b geometry) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 2 * 6371008.7714 * asin(least(1, sqrt(
    sin(radians(((b::point)[1] - (a::point)[1]) / 2)) ^ 2
    + cos(radians((a::point)[1])) * cos(radians((b::point)[1]))
      * sin(radians(((b::point)[0] - (a::point)[0]) / 2)) ^ 2)))
$$""",
)

QUICK_SIZES = ds.Sizes(points=3_000, docs=3_000, owners=50, items=1_000, per_owner=30, secrets=3_000, roles=50,
                       users=12)


def make_seeder(pg: Postgres, sizes: ds.Sizes, workloads: list[str], near_km: float, box_deg: float) -> Seeder:
    needed = {DATASET_OF[w] for w in workloads} - {None}
    first_answers: dict[str, Any] = {}  # the first server's, which the others must match

    def seed(target: SeedTarget) -> list[str]:
        if target.db is None:
            raise BenchError("the data-API workloads need PostgreSQL")
        db, base, tag = target.db, target.base, target.tag
        args = [f"appid={APP_ID}", f"masterkey={MASTER_KEY}", f"password={ds.PASSWORD}", f"km={near_km:g}",
                f"box={box_deg:g}", f"range={sizes.secrets}"]

        def step(what: str, fn: Any, *fn_args: Any) -> Any:
            t0 = time.monotonic()
            result = fn(*fn_args)
            log(f"{tag}: {what} in {time.monotonic() - t0:.1f}s")
            return result

        if target.name == "parse" and "places" in needed:
            for statement in POSTGIS_STAND_IN:
                pg.run_sql(db, statement)
            log(f"{tag}: installed the ST_DistanceSphere stand-in (no PostGIS) in {db}")
        owner_ids: list[str] = []
        acl: ds.AclSetup | None = None
        if "places" in needed:
            step(f"loaded {sizes.points} places", ds.load_places, pg, db, base, sizes)
        if "docs" in needed:
            step(f"loaded {sizes.docs} documents", ds.load_docs, pg, db, base, sizes)
            args.append(f"words={ds.write_lines(target.tmp / 'words.txt', ds.WORDS)}")
        if "relations" in needed:
            owner_ids = step(f"loaded {sizes.owners} owners x {sizes.per_owner} of {sizes.items} items",
                             ds.load_relations, pg, db, base, sizes)
            args.append(f"owners={ds.write_lines(target.tmp / 'owners.txt', owner_ids)}")
        if "secrets" in needed:
            acl = step(f"loaded {sizes.secrets} objects under {sizes.roles} roles", ds.load_secrets, pg, db, base,
                       sizes)
            args.append(f"session={acl.session}")
            log(f"{tag}: the acl user holds roles {', '.join(acl.roles)}")
        if "users" in needed:
            names = step(f"signed up {sizes.users} users", ds.load_users, base, sizes)
            args.append(f"users={ds.write_lines(target.tmp / 'users.txt', names)}")
        for problem in ds.check_counts(base, sizes, needed, acl, owner_ids):
            log(f"{tag}: NOTE {problem}")
        answers = ds.ranked_answers(base, needed)
        if not first_answers:
            first_answers.update(answers, server=tag)
        for what, answer in answers.items():
            if first_answers.get(what, answer) != answer:
                log(f"{tag}: NOTE {what} differs from {first_answers['server']}: {answer} != {first_answers[what]}")
            elif first_answers["server"] != tag:
                log(f"{tag}: {what}: same as {first_answers['server']} ({answer[:3]}...)")
        return args

    return seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Data-API benchmark (geo, full-text, relations, users, ACLs): Bastion against Parse Server "
                    "(see bench/README.md).")
    parser.add_argument("--servers", type=csv_list(SERVERS), default=list(SERVERS),
                        help=f"comma-separated, from {','.join(SERVERS)} (default: all)")
    parser.add_argument("--workloads", type=csv_list(WORKLOADS), default=list(WORKLOADS),
                        help=f"comma-separated, from {','.join(WORKLOADS)} (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small data sets, 2 s per workload, no warm-up, no waiting or retries")
    defaults = ds.Sizes()
    for name, help_text in (("points", "GeoPoints for near/box"), ("docs", "documents for text/text_score"),
                            ("owners", "owners for related"), ("items", "items the owners relate to"),
                            ("per_owner", "related items per owner"), ("secrets", "objects for acl_*"),
                            ("roles", "roles the acl_* objects are spread over"),
                            ("users", "users seeded for login")):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name,
                            help=f"{help_text} (default: {getattr(defaults, name)}; --quick: "
                                 f"{getattr(QUICK_SIZES, name)})")
    parser.add_argument("--near-km", type=float,
                        help="near: the distance around the random point, in km (default: 300; --quick: 1500)")
    parser.add_argument("--box-deg", type=float,
                        help="box: side of the random box, in degrees (default: 5; --quick: 25)")
    add_load_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.wait_idle, args.retries = 2.0, 0.0, 0.0, 0
    base_sizes = QUICK_SIZES if args.quick else defaults
    # With fewer points, larger areas keep the answers as full as with 100,000.
    if args.near_km is None:
        args.near_km = 1500.0 if args.quick else 300.0
    if args.box_deg is None:
        args.box_deg = 25.0 if args.quick else 5.0
    if not 0 < args.box_deg <= 90:
        parser.error("--box-deg must be in (0, 90]")
    sizes = ds.Sizes(**{name: getattr(args, name) if getattr(args, name, None) is not None else value
                        for name, value in vars(base_sizes).items()})
    if sizes.roles < 4 or min(sizes.points, sizes.docs, sizes.owners, sizes.items, sizes.secrets, sizes.users) < 1:
        parser.error("data sets must not be empty, and --roles must be at least 4")

    servers = available_servers(parser, args, args.servers)
    opts: Options = options_from_args(args, seed=0)
    seeder = make_seeder(opts.pg, sizes, args.workloads, args.near_km, args.box_deg)
    needed = {DATASET_OF[w] for w in args.workloads}
    described = {"places": f"{sizes.points} places", "docs": f"{sizes.docs} documents",
                 "relations": f"{sizes.owners} owners x {sizes.per_owner} of {sizes.items} items",
                 "secrets": f"{sizes.secrets} objects under {sizes.roles} roles", "users": f"{sizes.users} users"}
    headline = ", ".join(text for name, text in described.items() if name in needed) or "no data seeded"
    settings = {"sizes": vars(sizes), "near_km": args.near_km, "box_deg": args.box_deg, "quick": args.quick}
    return run_matrix(args, servers, args.workloads, opts, seeder=seeder, headline=headline, settings=settings,
                      script="data_api.py", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
