"""`rollbot stats`: the figures of the records in the store, as a table, JSON, CSV
and a chart, for one service or all."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from PIL import Image

from bot.cli import EXIT_BAD_INPUT, EXIT_OK, run
from bot.records import RollbackState
from bot.store import RollbackStore, connect
from bot.terminal import Terminal
from tests.unit.test_stats import record

S = RollbackState
NOW = datetime.now(UTC)


class Captured(Terminal):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[str] = []
        self.err: list[str] = []

    def say(self, text: str) -> None:
        self.out.append(text)

    def complain(self, text: str) -> None:
        self.err.append(text)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RollbackStore]:
    """The embedded store `rollbot stats` reads when REDIS_URL is unset."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("ROLLBOT_CONFIG", raising=False)
    monkeypatch.setenv("ROLLBOT_DATA_DIR", str(tmp_path))
    client: redis.Redis = connect(data_dir=tmp_path)
    yield RollbackStore(client)
    client.flushdb()


def fill(store: RollbackStore) -> None:
    for days, workload, end, restore in [
        (1, "web", S.SUCCEEDED, 120),
        (2, "web", S.SUCCEEDED, 240),
        (3, "web", S.FAILED, 600),
        (4, "api", S.SUCCEEDED, 60),
        (45, "web", S.SUCCEEDED, 30),  # outside the default 30 days
    ]:
        at = NOW - timedelta(days=days)
        store.create(record(at=at, workload=workload, end=end, restore=restore))


def stats(*args: str) -> tuple[int, Captured]:
    out = Captured()
    return run(["stats", *args], out), out


def test_the_table_shows_each_service_with_its_success_rate_and_mttr(store: RollbackStore) -> None:
    fill(store)
    code, out = stats()
    assert code == EXIT_OK
    assert out.out[0].startswith("4 rollbacks from ")
    assert "75% succeeded, MTTR 2m (p90 3m)" in out.out[0]
    rows = {line.split()[0]: line.split() for line in out.out[2:5]}
    assert rows["service"][:4] == ["service", "environment", "rollbacks", "success"]
    assert rows["web"][1:5] == ["prod", "3", "67%", "3m"]
    assert rows["api"][1:5] == ["prod", "1", "100%", "1m"]


def test_json_and_csv_carry_the_same_figures_in_seconds(store: RollbackStore) -> None:
    fill(store)
    code, out = stats("web", "-o", "json")
    body = json.loads("\n".join(out.out))
    assert code == EXIT_OK
    assert body["total"]["rollbacks"] == 3 and body["total"]["success_rate"] == pytest.approx(2 / 3)
    assert body["total"]["time_to_restore"] == {"count": 2, "median": 180.0, "p90": 228.0}
    code, out = stats("--since", "60d", "-o", "csv")
    rows = list(csv.DictReader(io.StringIO("\n".join(out.out))))
    assert [(r["service"], r["rollbacks"]) for r in rows] == [("api", "1"), ("web", "4")]
    assert rows[1]["time_to_restore_median"] == "120.0"


def test_the_chart_is_a_png_of_the_trend(store: RollbackStore, tmp_path: Path) -> None:
    fill(store)
    chart = tmp_path / "trend.png"
    code, out = stats("--chart", str(chart))
    assert code == EXIT_OK and out.err == [f"chart written to {chart}"]
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size == (800, 450)
        # Not a blank canvas: the bars and the line are drawn in colour.
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16) or []
        assert len(colours) > 20


def test_an_empty_store_says_so(store: RollbackStore) -> None:
    code, out = stats()
    assert code == EXIT_OK and out.out[0].startswith("No rollbacks from ")


def test_a_bad_window_is_refused_with_the_forms_allowed(store: RollbackStore) -> None:
    code, out = stats("--since", "a month")
    assert code == EXIT_BAD_INPUT
    assert "--since takes a number and h, d or w" in out.err[0]
