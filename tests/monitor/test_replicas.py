"""Several monitors, one database, with real processes on PostgreSQL: replicas share ingest with
no coordination, one leader runs the jobs, a ``SIGKILL`` of the leader hands them to another, and
a replica cut off its database answers 503 (readiness and writes) and recovers by itself.

Timings are measured and printed (``-s``), never asserted: every wait polls with a generous
timeout, so a loaded machine is slower, not red.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from tests.monitor.replicas import (
    RoundRobinSender,
    TcpGate,
    any_job_runs,
    batch_payload,
    job_runs,
    leader,
)
from tests.procs import MonitorProcess

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

JOB_INTERVAL = 1.0
ENV = {"DRIFTLOOP_JOBS__INTERVAL_SECONDS": str(JOB_INTERVAL)}
GZIP_JSON = {"content-type": "application/json", "content-encoding": "gzip"}
WAIT = 60.0
"""Upper bound of every wait (a loaded 2-core machine); the measured times are printed."""


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> float:
    """Poll ``condition`` (errors count as false) until it holds; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def with_app_name(url: str, name: str, port: int | None = None) -> str:
    """``url`` with an ``application_name`` (``pg_stat_activity`` tells the replicas apart)
    and, with ``port``, through that loopback port."""
    parsed = make_url(url).update_query_dict({"application_name": name})
    if port is not None:
        parsed = parsed.set(host="127.0.0.1", port=port)
    return parsed.render_as_string(hide_password=False)


class Replicas:
    """Monitor processes started by one test, all stopped at its end whatever happened."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[MonitorProcess] = []

    def start(self, *urls: str) -> list[MonitorProcess]:
        """Start one monitor per database URL, concurrently, and wait until each is ready."""
        monitors = [MonitorProcess(url, self.logdir, env=ENV) for url in urls]
        self.started.extend(monitors)
        with ThreadPoolExecutor(len(monitors)) as pool:
            list(pool.map(MonitorProcess.start, monitors))
        return monitors

    def stop(self) -> None:
        for monitor in self.started:
            monitor.stop(signal.SIGKILL)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    started = Replicas(tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def gates(pg_database_url: str) -> Iterator[Callable[[], TcpGate]]:
    """Gates to the test's PostgreSQL server, shut down at the end of the test."""
    server = make_url(pg_database_url)
    made: list[TcpGate] = []

    def gate() -> TcpGate:
        made.append(TcpGate((server.host or "127.0.0.1", server.port or 5432)))
        return made[-1]

    yield gate
    for each in made:
        each.shutdown()


@pytest.fixture
def sender_stack() -> Iterator[list[RoundRobinSender]]:
    """Senders started by the test, stopped at its end."""
    senders: list[RoundRobinSender] = []
    yield senders
    for sender in senders:
        sender.stop()


def the_leader(monitors: list[MonitorProcess]) -> MonitorProcess:
    """Wait until one monitor leads and has run a job; return it."""

    def one_leads() -> bool:
        return sum(leader(m.url) for m in monitors) == 1 and any(job_runs(m.url) for m in monitors)

    wait_until(one_leads, "one leader among the replicas, running jobs")
    return next(m for m in monitors if leader(m.url))


def stored_request_ids(database_url: str) -> tuple[int, int, set[str]]:
    """Rows in ``records``, distinct request ids, and the request ids themselves."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            ids = [row[0] for row in connection.execute(text("SELECT request_id FROM records"))]
    finally:
        engine.dispose()
    return len(ids), len(set(ids)), set(ids)


def assert_exactly_once(
    database_url: str, sender: RoundRobinSender, also: Sequence[str] = ()
) -> None:
    """Every record acknowledged (by the sender's monitors, or ``also``) is stored once."""
    assert sender.error is None, sender.error
    assert not sender.unexpected_failures(), "a monitor answered neither 2xx nor 503"
    rows, distinct, ids = stored_request_ids(database_url)
    acknowledged = {*sender.acknowledged, *also}
    assert rows == distinct, f"{rows - distinct} record(s) stored twice"
    assert ids == acknowledged, (
        f"{len(acknowledged - ids)} acknowledged record(s) missing, "
        f"{len(ids - acknowledged)} stored but never acknowledged"
    )


def sessions(admin: Engine, database: str, application_name: str) -> int:
    """The server sessions one application has open on ``database``."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND application_name = :app"
    with admin.connect() as connection:
        count: int = connection.execute(
            text(query), {"db": database, "app": application_name}
        ).scalar_one()
    return count


def terminate_backends(admin: Engine, database: str, application_name: str | None = None) -> int:
    """End the server processes of ``database`` (of one application); how many there were."""
    query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :db"
    params = {"db": database}
    if application_name is not None:
        query += " AND application_name = :app"
        params["app"] = application_name
    with admin.connect() as connection:
        ended: int = connection.execute(text(query), params).scalar_one()
    return ended


def assert_unavailable(response: httpx.Response) -> None:
    """A 503 that says why, with the delay before a retry."""
    assert response.status_code == 503, response.text
    assert "database" in response.json()["detail"]
    assert float(response.headers["retry-after"]) > 0


def test_killing_the_leader_hands_the_jobs_to_the_other_replica_and_loses_no_record(
    pg_database_url: str,
    pg_admin: Engine,
    replicas: Replicas,
    sender_stack: list[RoundRobinSender],
) -> None:
    database = make_url(pg_database_url).database
    assert database is not None
    names = ("driftloop-a", "driftloop-b")
    monitors = replicas.start(*(with_app_name(pg_database_url, name) for name in names))
    name_of = {m.url: name for m, name in zip(monitors, names, strict=True)}
    first = the_leader(monitors)
    (other,) = (m for m in monitors if m is not first)

    sender = RoundRobinSender([m.url for m in monitors]).start()
    sender_stack.append(sender)
    sender.wait_for(10)
    assert not leader(other.url)
    assert any_job_runs(other.url) == 0, "only the leader runs jobs"
    runs_before = job_runs(other.url)

    first.stop(signal.SIGKILL)
    killed = time.monotonic()
    # The kernel closes the killed process's sockets: the server ends its sessions (and frees
    # the leader lock) at once, without waiting for TCP keepalives.
    ended = wait_until(
        lambda: sessions(pg_admin, database, name_of[first.url]) == 0,
        "the server ends the killed replica's sessions",
    )
    took_over = wait_until(lambda: leader(other.url), "the survivor becomes the leader")
    ran = wait_until(lambda: job_runs(other.url) > runs_before, "the survivor runs the jobs")
    sender.wait_for(sender.batches + 10)
    sender.stop()

    print(
        f"\nhandover after SIGKILL: sessions ended in {ended - killed:.2f} s, "
        f"leader in {took_over - killed:.2f} s, first drift job run in {ran - killed:.2f} s "
        f"= {(ran - killed) / JOB_INTERVAL:.1f} job intervals ({JOB_INTERVAL:g} s); "
        f"{sender.batches} batches, "
        f"{len(sender.failures)} retried on the other replica"
    )
    assert_exactly_once(pg_database_url, sender)


def test_a_replica_cut_off_its_database_answers_503_gives_up_the_lead_and_recovers(
    pg_database_url: str,
    pg_admin: Engine,
    replicas: Replicas,
    gates: Callable[[], TcpGate],
    sender_stack: list[RoundRobinSender],
) -> None:
    database = make_url(pg_database_url).database
    assert database is not None
    # Each replica reaches the database through a gate of its own, which can cut it off.
    names = ("driftloop-a", "driftloop-b")
    gate_of = {name: gates() for name in names}
    monitors = replicas.start(
        *(with_app_name(pg_database_url, name, gate_of[name].port) for name in names)
    )
    name_of = {m.url: name for m, name in zip(monitors, names, strict=True)}
    cut = the_leader(monitors)
    (steady,) = (m for m in monitors if m is not cut)
    sender = RoundRobinSender([m.url for m in monitors]).start()
    sender_stack.append(sender)
    sender.wait_for(5)

    # The leader loses the database: its connections end, new ones are refused.
    gate_of[name_of[cut.url]].close()
    assert terminate_backends(pg_admin, database, name_of[cut.url]) > 0
    lost = time.monotonic()
    with httpx.Client(base_url=cut.url, timeout=30) as http:
        wait_until(lambda: http.get("/readyz").status_code == 503, "the cut replica is not ready")
        assert_unavailable(http.get("/readyz"))
        refused, _ = batch_payload(-1, 2)
        assert_unavailable(http.post("/v1/records", content=refused, headers=GZIP_JSON))
        assert_unavailable(http.post("/v1/feedback", json=[{"request_id": "x", "label": 1}]))
    took_over = wait_until(lambda: leader(steady.url), "the other replica takes the lead")
    runs = job_runs(steady.url)
    wait_until(lambda: job_runs(steady.url) > runs, "the other replica runs the jobs")
    wait_until(lambda: not leader(cut.url), "the cut replica stops leading")
    runs_cut = any_job_runs(cut.url)
    sender.wait_for(sender.batches + 5)
    assert any_job_runs(cut.url) == runs_cut, "a replica without its database runs no job"

    # The database is back: ready again by itself, ingest answers, the new leader keeps the lead.
    gate_of[name_of[cut.url]].open()
    back = time.monotonic()
    ready = wait_until(lambda: httpx.get(f"{cut.url}/readyz").status_code == 200, "ready again")
    direct, direct_ids = batch_payload(-2, 2)
    response = httpx.post(f"{cut.url}/v1/records", content=direct, headers=GZIP_JSON)
    assert response.status_code == 200, response.text
    sender.wait_for(sender.batches + 5)
    assert leader(steady.url), "the new leader keeps the lead"
    assert not leader(cut.url)

    # The whole database goes away: both answer 503 and nobody leads; then both recover by
    # themselves, one of them leads again and the jobs run.
    with pg_admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
    try:
        terminate_backends(pg_admin, database)
        wait_until(
            lambda: all(httpx.get(f"{m.url}/readyz").status_code == 503 for m in monitors),
            "no replica is ready without the database",
        )
        wait_until(lambda: not any(leader(m.url) for m in monitors), "nobody leads")
    finally:
        with pg_admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    restored = time.monotonic()
    both = wait_until(
        lambda: all(httpx.get(f"{m.url}/readyz").status_code == 200 for m in monitors),
        "both ready again",
    )
    again = the_leader(monitors)
    runs = job_runs(again.url)
    wait_until(lambda: job_runs(again.url) > runs, "the leader runs the jobs again")
    sender.wait_for(sender.batches + 5)
    sender.stop()

    print(
        f"\nleader cut off: the other leads {took_over - lost:.2f} s later; the cut replica is "
        f"ready {ready - back:.2f} s after its database is back; both ready "
        f"{both - restored:.2f} s after a whole-database outage; {sender.batches} batches, "
        f"{len(sender.failures)} retried on the other replica"
    )
    assert_exactly_once(pg_database_url, sender, direct_ids)
