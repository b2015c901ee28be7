"""Cloud jobs: POST /jobs, _JobStatus, Parse Dashboard's /cloud_code/jobs and scheduled jobs.

The session server runs tests/cloud_app (jobs in tests/cloud_app/jobs.py); the schedule tests start
servers of their own with a fast scheduler tick, two of them on one database for exactly-once runs.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bastion.cloud._runtime.scheduler import claim_id, parse_schedule, previous_fire, schedule_slot
from tests.api.conftest import EXTERNAL
from tests.api.helpers import ISO_DATE, OBJECT_ID, assert_error
from tests.conftest import (
    ROOT,
    Server,
    backend_database,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.skipif(bool(EXTERNAL), reason="runs Bastion's Python cloud code (tests/cloud_app)")

CLOUD = ["--cloud", str(ROOT / "tests" / "cloud_app")]


def start_job(master: httpx.Client, path: str, body: Any = None, **params: Any) -> str:
    response = master.post(path, json=body if body is not None else {}, params=params)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    job_id = response.headers["X-Parse-Job-Status-Id"]
    assert OBJECT_ID.match(job_id)
    return job_id


def job_status(master: httpx.Client, job_id: str) -> dict[str, Any]:
    response = master.get(f"/classes/_JobStatus/{job_id}")  # what Parse.Cloud.getJobStatus asks
    assert response.status_code == 200, response.text
    return response.json()


def wait_finished(master: httpx.Client, job_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = job_status(master, job_id)
        if status["status"] != "running" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def wait_for(predicate: Any, timeout: float = 15, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


# --- POST /jobs ---------------------------------------------------------------------------------


def test_a_job_runs_in_the_background_and_its_status_tells_how_it_went(master: httpx.Client) -> None:
    job_id = start_job(master, "/jobs/jobEcho", {"n": 3, "when": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}})
    status = wait_finished(master, job_id)
    assert status["status"] == "succeeded"
    assert status["message"] == "done 3"  # a returned string becomes the message
    assert (status["jobName"], status["source"], status["objectId"]) == ("jobEcho", "api", job_id)
    assert status["params"] == {"n": 3, "when": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}}
    assert ISO_DATE.match(status["finishedAt"]["iso"]) and status["finishedAt"]["__type"] == "Date"
    assert ISO_DATE.match(status["createdAt"])
    assert status["ACL"] == {}  # locked down: only the master key reads it


def test_post_jobs_takes_the_name_from_the_body_and_query_parameters_win(master: httpx.Client) -> None:
    job_id = start_job(master, "/jobs", {"jobName": "jobEcho", "n": 1}, n="5")
    status = wait_finished(master, job_id)
    assert (status["status"], status["message"]) == ("succeeded", "done 5")
    assert status["params"] == {"jobName": "jobEcho", "n": "5"}  # as Parse: the body, jobName included


def test_messages_are_written_in_order_while_the_job_runs(master: httpx.Client) -> None:
    job_id = start_job(master, "/jobs/jobMessages", {"sleep": 1.5})
    running = wait_for(lambda: (s := job_status(master, job_id))["status"] == "running"
                       and s.get("message") == "second" and s, timeout=5, every=0.05)
    assert running, "the messages sent before the sleep were not written while it ran"
    status = wait_finished(master, job_id)
    assert (status["status"], status["message"]) == ("succeeded", "last")


def test_a_plain_def_job_runs_and_may_send_messages(master: httpx.Client) -> None:
    status = wait_finished(master, start_job(master, "/jobs/jobSync"))
    assert (status["status"], status["message"]) == ("succeeded", "sync ok")


def test_a_failing_job_is_marked_failed_with_the_error_message(master: httpx.Client) -> None:
    status = wait_finished(master, start_job(master, "/jobs/jobParseError"))
    assert (status["status"], status["message"]) == ("failed", "nope")
    assert ISO_DATE.match(status["finishedAt"]["iso"])
    # Any exception: the job's status has its message (master key only), the log its traceback.
    status = wait_finished(master, start_job(master, "/jobs/jobCrash"))
    assert (status["status"], status["message"]) == ("failed", "boom")


def test_a_quick_job_is_finished_when_its_start_is_answered(master: httpx.Client) -> None:
    # As on Parse Server (the job runs before the answer leaves): SDK suites read the status at once.
    assert job_status(master, start_job(master, "/jobs/jobEcho", {"n": 1}))["status"] == "succeeded"
    assert job_status(master, start_job(master, "/jobs/jobParseError"))["status"] == "failed"
    assert job_status(master, start_job(master, "/jobs/jobMessages", {"sleep": 1.5}))["status"] == "running"


def test_unknown_job(master: httpx.Client) -> None:
    assert_error(master.post("/jobs/noSuchJob", json={}), 400, 141, "Invalid job.")
    assert_error(master.post("/jobs", json={}), 400, 141, "Invalid job.")
    assert_error(master.post("/jobs", json={"jobName": 3}), 400, 141, "Invalid job.")


def test_clients_may_neither_start_jobs_nor_read_their_status(api: httpx.Client, master: httpx.Client) -> None:
    for path in ("/jobs/jobEcho", "/jobs"):
        response = api.post(path, json={"jobName": "jobEcho"})
        assert response.status_code == 403 and response.json() == {"error": "Permission denied"}
    job_id = start_job(master, "/jobs/jobEcho")
    wait_finished(master, job_id)
    assert_error(api.get("/classes/_JobStatus"), 400, 119, "Permission denied")
    assert_error(api.get(f"/classes/_JobStatus/{job_id}"), 400, 119, "Permission denied")
    assert_error(api.put(f"/classes/_JobStatus/{job_id}", json={"status": "x"}), 400, 119, "Permission denied")
    found = master.get("/classes/_JobStatus", params={"where": json.dumps({"objectId": job_id})}).json()["results"]
    assert [s["objectId"] for s in found] == [job_id]


# --- Parse Dashboard: /cloud_code/jobs ----------------------------------------------------------


FUTURE = "2099-01-01T00:00:00.000Z"


def test_dashboard_lists_jobs_and_edits_schedules(master: httpx.Client, api: httpx.Client) -> None:
    data = master.get("/cloud_code/jobs/data").json()
    assert {"jobEcho", "jobMessages", "jobSync", "jobScheduled"} <= set(data["jobs"])
    description = "nightly " + secrets.token_hex(4)
    schedule = {"jobName": "jobEcho", "description": description, "params": '{"n": 1}', "startAfter": FUTURE,
                "daysOfWeek": [1, 1, 1, 1, 1, 1, 1], "timeOfDay": "03:00:00.000Z", "repeatMinutes": 1440}
    response = master.post("/cloud_code/jobs", json={"job_schedule": schedule})
    assert response.status_code == 201, response.text
    created = response.json()
    assert OBJECT_ID.match(created["objectId"]) and ISO_DATE.match(created["createdAt"])
    try:
        listed = [s for s in master.get("/cloud_code/jobs").json() if s["objectId"] == created["objectId"]]
        assert len(listed) == 1 and listed[0]["description"] == description
        assert listed[0]["params"] == '{"n": 1}' and listed[0]["daysOfWeek"] == [1, 1, 1, 1, 1, 1, 1]
        assert "jobEcho" in master.get("/cloud_code/jobs/data").json()["in_use"]

        edit = {"jobName": "jobSync", "description": description, "startAfter": FUTURE}
        response = master.put(f"/cloud_code/jobs/{created['objectId']}", json={"job_schedule": edit})
        assert response.status_code == 200, response.text
        assert ISO_DATE.match(response.json()["response"]["updatedAt"])  # sic: wrapped, as Parse Server
        stored = master.get(f"/classes/_JobSchedule/{created['objectId']}").json()
        assert (stored["jobName"], stored["repeatMinutes"]) == ("jobSync", 1440)

        # A schedule without startAfter starts now (Parse Server fills it in).
        unknown = {"jobName": "notDeployed", "startAfter": FUTURE}
        assert_error(master.post("/cloud_code/jobs", json={"job_schedule": unknown}), 500, 1,
                     "Cannot Schedule a job that is not deployed")
        assert_error(master.put(f"/cloud_code/jobs/{created['objectId']}", json={"job_schedule": unknown}),
                     500, 1, "Cannot Schedule a job that is not deployed")
        for method, path in (("GET", "/cloud_code/jobs"), ("GET", "/cloud_code/jobs/data"),
                             ("POST", "/cloud_code/jobs"), ("PUT", f"/cloud_code/jobs/{created['objectId']}"),
                             ("DELETE", f"/cloud_code/jobs/{created['objectId']}")):
            response = api.request(method, path, json={"job_schedule": schedule})
            assert response.status_code == 403 and response.json() == {"error": "Permission denied"}, path
        assert_error(api.get("/classes/_JobSchedule"), 400, 119, "Permission denied")
    finally:
        response = master.delete(f"/cloud_code/jobs/{created['objectId']}")
    assert response.status_code == 200 and response.json() == {}
    assert all(s["objectId"] != created["objectId"] for s in master.get("/cloud_code/jobs").json())


# --- schedules ----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, own_server: None, tmp_path: Any) -> Iterator[tuple[str, str]]:
    """A database URL two servers can share: (backend, url)."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'shared.db'}"
        return
    with backend_database("postgres") as url:
        yield "postgres", url


def scheduled_runs(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/classes/_JobStatus", params={"where": '{"source":"schedule"}', "limit": 1000})
    if response.status_code != 200:  # the class does not exist yet
        return []
    return response.json()["results"]


def test_cron_schedule_runs_each_moment_once(database: tuple[str, str]) -> None:
    backend, url = database
    srv = start_server(backend, url, [*CLOUD, "--schedule", "jobScheduled=*/2 * * * * *",
                                      "--schedule-tick-ms", "200"])
    try:
        with srv.client(master=True) as master:
            runs = wait_for(lambda: len(runs := scheduled_runs(master)) >= 3
                            and all(r["status"] == "succeeded" for r in runs) and runs)
            assert runs, "the schedule did not run three times"
            slots = [r["message"].split()[1] for r in runs]
            assert len(set(slots)) == len(slots)
            assert all(r["jobName"] == "jobScheduled" and r["source"] == "schedule" for r in runs)
    finally:
        stop_server(srv)


def test_dashboard_schedules_run(database: tuple[str, str]) -> None:
    backend, url = database
    srv = start_server(backend, url, [*CLOUD, "--schedule-tick-ms", "200"])
    try:
        with srv.client(master=True) as master:
            once = master.post("/cloud_code/jobs", json={"job_schedule": {
                "jobName": "jobScheduled", "params": '{"once": true}', "daysOfWeek": [1] * 7}})
            assert once.status_code == 201, once.text
            every_minute = master.post("/cloud_code/jobs", json={"job_schedule": {
                "jobName": "jobScheduled", "params": '{"repeat": 1}', "startAfter": "2020-01-01T00:00:00.000Z",
                "timeOfDay": "00:00:00.000Z", "repeatMinutes": 1}})
            assert every_minute.status_code == 201, every_minute.text
            runs = wait_for(lambda: len(runs := scheduled_runs(master)) >= 2
                            and all(r["status"] == "succeeded" for r in runs) and runs)
            assert runs, "the schedules did not run"
            params = sorted(r["message"].split("params ")[1] for r in runs)
            assert params == ["['once']", "['repeat']"]
            stored = master.get(f"/classes/_JobSchedule/{once.json()['objectId']}").json()
            assert isinstance(stored["lastRun"], int)  # seconds since 1970 of the moment run
            time.sleep(1.0)  # a one-off schedule does not run again
            assert len([r for r in scheduled_runs(master) if "once" in r["message"]]) == 1
    finally:
        stop_server(srv)


def test_two_servers_on_one_database_run_each_scheduled_moment_once(database: tuple[str, str]) -> None:
    backend, url = database
    args = [*CLOUD, "--schedule", "jobScheduled=* * * * * *", "--schedule-tick-ms", "100"]
    servers: list[Server] = []
    try:
        servers.append(start_server(backend, url, args))
        servers.append(start_server(backend, url, args))
        with servers[0].client(master=True) as master:
            schedule = master.post("/cloud_code/jobs", json={"job_schedule": {
                "jobName": "jobScheduled", "params": '{"dashboard": 1}', "startAfter": "2020-01-01T00:00:00.000Z",
                "timeOfDay": "00:00:00.000Z", "repeatMinutes": 1}})
            assert schedule.status_code == 201, schedule.text
            time.sleep(6)
            runs = [r for r in scheduled_runs(master) if r["status"] == "succeeded"]
    finally:
        for srv in servers:
            stop_server(srv)
    # One status per scheduled moment (the job writes the moment into its message).
    cron = Counter(r["message"].split()[1] for r in runs if r["message"].endswith("[]"))
    dashboard = Counter(r["message"].split()[1] for r in runs if "dashboard" in r["message"])
    assert len(cron) >= 4, runs
    assert max(cron.values()) == 1, [slot for slot, n in cron.items() if n > 1]
    assert 1 <= len(dashboard) <= 2 and max(dashboard.values()) == 1, dashboard


def test_a_job_still_running_when_the_server_stops_is_marked_failed(own_server: None, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    srv = start_server("sqlite", url, CLOUD)
    try:
        with srv.client(master=True) as master:
            job_id = start_job(master, "/jobs/jobMessages", {"sleep": 60})
            assert wait_for(lambda: job_status(master, job_id).get("message") == "second", timeout=5)
    finally:
        stop_server(srv)
    srv = start_server("sqlite", url, CLOUD)
    try:
        with srv.client(master=True) as master:
            status = job_status(master, job_id)
    finally:
        stop_server(srv)
    assert (status["status"], status["message"]) == ("failed", "The server stopped before the job finished.")
    assert ISO_DATE.match(status["finishedAt"]["iso"])


def test_a_schedule_naming_an_undefined_job_stops_the_start(own_server: None) -> None:
    with pytest.raises(RuntimeError, match="names the job 'nope', which the cloud code does not define"):
        start_server("sqlite", None, [*CLOUD, "--schedule", "nope=* * * * *"])
    with pytest.raises(RuntimeError, match="expected JOB_NAME=CRON"):
        start_server("sqlite", None, [*CLOUD, "--schedule", "* * * * *"])


# --- when a schedule is due (no server) ---------------------------------------------------------


def test_schedule_syntax() -> None:
    entries = parse_schedule("cleanup=*/5 * * * *; report = 0 3 * * 1-5\nfast=*/2 * * * * *")
    assert [(e.job, e.expr) for e in entries] == [("cleanup", "*/5 * * * *"), ("report", "0 3 * * 1-5"),
                                                  ("fast", "*/2 * * * * *")]
    assert parse_schedule("") == [] and parse_schedule(None) == []
    for bad in ("cleanup", "cleanup=* * *", "cleanup=61 * * * *", "=* * * * *"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_previous_fire_includes_the_current_moment() -> None:
    at = datetime(2024, 1, 1, 10, 5, 0, tzinfo=UTC)
    assert previous_fire("*/5 * * * *", at) == at
    assert previous_fire("*/5 * * * *", at + timedelta(seconds=59)) == at
    assert previous_fire("*/5 * * * *", at - timedelta(microseconds=1)) == at - timedelta(minutes=5)


def test_dashboard_schedule_moments() -> None:
    now = datetime(2024, 1, 3, 12, 30, 20, tzinfo=UTC)  # a Wednesday
    once = {"startAfter": "2024-01-03T12:00:00.000Z"}
    assert schedule_slot(once, now, 60) == datetime(2024, 1, 3, 12, 0, tzinfo=UTC)  # late, but once
    assert schedule_slot({**once, "lastRun": 1704283200}, now, 60) is None  # ran already
    assert schedule_slot({"startAfter": "2024-01-03T13:00:00.000Z"}, now, 60) is None
    hourly = {"startAfter": "2024-01-01T00:00:00.000Z", "timeOfDay": "08:30:00.000Z", "repeatMinutes": 60}
    assert schedule_slot(hourly, now, 60) == datetime(2024, 1, 3, 12, 30, tzinfo=UTC)
    assert schedule_slot(hourly, now + timedelta(minutes=2), 60) is None  # too late: skipped
    no_wednesday = {**hourly, "daysOfWeek": [1, 1, 1, 0, 1, 1, 1]}  # Sunday first
    assert schedule_slot(no_wednesday, now, 60) is None
    assert schedule_slot({**hourly, "daysOfWeek": [0, 0, 0, 1, 0, 0, 0]}, now, 60) is not None
    assert schedule_slot({**hourly, "startAfter": "2024-01-03T12:31:00.000Z"}, now, 60) is None
    daily = {"startAfter": "2024-01-01T00:00:00.000Z", "timeOfDay": "12:30:00.000Z", "repeatMinutes": 1440}
    assert schedule_slot(daily, now, 60) == datetime(2024, 1, 3, 12, 30, tzinfo=UTC)
    assert schedule_slot(daily, now.replace(hour=12, minute=29), 60) is None
    # Moments stop at the end of the day; the next day starts again at timeOfDay.
    late = {"startAfter": "2024-01-01T00:00:00.000Z", "timeOfDay": "23:00:00.000Z", "repeatMinutes": 45}
    assert schedule_slot(late, datetime(2024, 1, 3, 23, 45, 10, tzinfo=UTC), 60) == datetime(
        2024, 1, 3, 23, 45, tzinfo=UTC)
    assert schedule_slot(late, datetime(2024, 1, 4, 0, 0, 10, tzinfo=UTC), 60) is None
    assert schedule_slot({**hourly, "timeOfDay": "25:00"}, now, 60) is None


def test_claims_are_object_ids_and_differ_per_moment() -> None:
    first, second = claim_id("cron|a|* * * * *|2024-01-01T00:00:00.000Z"), claim_id("cron|a|* * * * *|x")
    assert OBJECT_ID.match(first) and first != second
    assert claim_id("cron|a|* * * * *|2024-01-01T00:00:00.000Z") == first
