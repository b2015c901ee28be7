"""Two Bastion apps in one process keep their cloud code apart: each app's decorators filled its own
registry (the loader's context), and each handler's data API acts on its own app's database (the
running runtime is a context variable, not a module global), and its cloud.Object subclasses are
its own. Apps in-process, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion import cloud
from bastion.app import Bastion
from bastion.cloud._runtime.context import registry_being_loaded
from bastion.config import Settings
from tests.conftest import backend_database

MASTER = "isolation-master"

CODE = '''from bastion import cloud


@cloud.define("who")
def who(request):
    return {name!r}


@cloud.define("{name}_only")
def only(request):
    return True


@cloud.define("add")
async def add(request):
    # the data API, from a handler: it must write to this app's database
    await cloud.Object("Thing", {{"by": {name!r}}}).save(use_master_key=True)
    await asyncio.sleep(0)  # let the other app's handler run meanwhile
    return await cloud.Query("Thing").count(use_master_key=True)


@cloud.before_save("Thing")
async def stamp(request):
    request.object.set("stamped", {name!r})


class Thing(cloud.Object):  # this app's own class of Thing objects
    class_name = "Thing"

    def label(self):
        return "thing of " + {name!r}


@cloud.define("label")
async def label(request):
    thing = await cloud.Query("Thing").first(use_master_key=True)
    return thing.label()


import asyncio
'''


@pytest.fixture(params=["sqlite", "postgres"])
def databases(request: pytest.FixtureRequest) -> Iterator[list[str | None]]:
    with ExitStack() as stack:
        yield [stack.enter_context(backend_database(request.param)) for _ in range(2)]


async def start(name: str, database: str | None, root: Path) -> tuple[Bastion, httpx.AsyncClient]:
    code = root / name / f"main_{name}.py"
    code.parent.mkdir(parents=True)
    code.write_text(CODE.format(name=name))
    data_dir = root / name / "data"
    settings: dict[str, Any] = {"database": database} if database else {}
    app = Bastion(Settings(app_id=f"app-{name}", master_key=MASTER, data_dir=data_dir, cloud=str(code), **settings))
    await app.startup()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cloud.test/parse",
                               headers={"X-Parse-Application-Id": f"app-{name}", "X-Parse-Master-Key": MASTER})
    return app, client


@pytest.fixture
async def apps(databases: list[str | None], tmp_path: Path) -> AsyncIterator[list[tuple[Bastion, httpx.AsyncClient]]]:
    started = [await start(name, database, tmp_path) for name, database in zip(("a", "b"), databases, strict=True)]
    try:
        yield started
    finally:
        for app, client in started:
            await client.aclose()
            await app.shutdown()


async def test_two_apps_have_their_own_registries(apps: list[tuple[Bastion, httpx.AsyncClient]]) -> None:
    (a, _), (b, _) = apps
    assert set(a.services.cloud.registry.functions) == {"who", "a_only", "add", "label"}
    assert set(b.services.cloud.registry.functions) == {"who", "b_only", "add", "label"}
    assert a.services.cloud.registry.object_classes["Thing"] is not b.services.cloud.registry.object_classes["Thing"]
    assert a.services.cloud.registry is not b.services.cloud.registry
    # Loading them left nothing in the registry decorators fill outside a load, nor in the
    # process-wide table of cloud.Object subclasses.
    assert "a_only" not in registry_being_loaded().functions and "b_only" not in registry_being_loaded().functions
    assert "Thing" not in cloud.Object._subclasses


async def test_each_app_runs_its_own_code_and_data_api(apps: list[tuple[Bastion, httpx.AsyncClient]]) -> None:
    (_, a), (_, b) = apps
    assert (await a.post("/functions/who")).json() == {"result": "a"}
    assert (await b.post("/functions/who")).json() == {"result": "b"}
    missing = await a.post("/functions/b_only")
    assert missing.status_code == 400 and missing.json() == {"code": 141, "error": 'Invalid function: "b_only"'}
    # Interleaved handlers: each one's data API writes into (and counts) its own app's database.
    answers = await asyncio.gather(a.post("/functions/add"), b.post("/functions/add"), a.post("/functions/add"))
    assert answers[1].json() == {"result": 1}  # b's database holds b's object alone
    assert all(answer.json()["result"] in (1, 2) for answer in answers[::2])
    for client, name, count in ((a, "a", 2), (b, "b", 1)):
        things = (await client.get("/classes/Thing")).json()["results"]
        assert len(things) == count
        # each app's own before_save stamped them
        assert {(thing["by"], thing["stamped"]) for thing in things} == {(name, name)}
        # its objects of class Thing are its own cloud.Object subclass
        assert (await client.post("/functions/label")).json() == {"result": f"thing of {name}"}
