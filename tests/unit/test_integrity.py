"""With a store key, a record or backup written to Redis without it is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.integrity import TamperedValue
from bot.records import requested
from bot.store import RollbackStore, connect

KEY = b"a-key-from-the-chart-secret"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    embedded = connect(data_dir=Path(tmp_path_factory.mktemp("redis")))
    yield embedded
    embedded.close()


def test_a_sealed_record_and_backup_read_back_as_written(client: redis.Redis) -> None:
    store = RollbackStore(client, key=KEY)
    record = store.create(requested("prod", "web", "U0ALICE"))
    store.save_backup(record.id, {"deployment": {"spec": {"replicas": 2}}})
    assert store.get(record.id) == record
    assert store.get_backup(record.id) == {"deployment": {"spec": {"replicas": 2}}}
    assert not client.get(f"rollbot:record:{record.id}").startswith("{")


def test_a_record_whose_pins_were_rewritten_in_redis_is_refused(client: redis.Redis) -> None:
    store = RollbackStore(client, key=KEY)
    record = store.create(requested("prod", "web", "U0ALICE"))
    forged = record.model_copy(update={"pins": {"web": "evil-replicaset"}})
    client.set(f"rollbot:record:{record.id}", forged.model_dump_json())
    with pytest.raises(TamperedValue, match="integrity check"):
        store.get(record.id)
    with pytest.raises(TamperedValue):
        store.update(record.id, lambda r: r.note("approve it anyway"))


def test_a_genuine_value_copied_under_another_key_is_refused(client: redis.Redis) -> None:
    store = RollbackStore(client, key=KEY)
    store.save_backup("rb-one", {"deployment": {"image": "good"}})
    client.set("rollbot:backup:rb-two", client.get("rollbot:backup:rb-one"))
    with pytest.raises(TamperedValue):
        store.get_backup("rb-two")


def test_a_store_with_another_key_refuses_what_this_one_wrote(client: redis.Redis) -> None:
    record = RollbackStore(client, key=KEY).create(requested("prod", "web", "U0ALICE"))
    with pytest.raises(TamperedValue):
        RollbackStore(client, key=b"another-key").get(record.id)
