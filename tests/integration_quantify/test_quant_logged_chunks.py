"""LoggedChunks' set-based queries (a JSON array through json_each on SQLite, a text array on
PostgreSQL) give the per-record adapters' answers on both databases."""

from __future__ import annotations

from quant_helpers import library_world
from test_quant_registry_side import chunked_log_answers_match_the_per_record_adapters as same_answers


def test_logged_chunks_answer_as_per_record_adapters_on_each_database(database_url, tmp_path):
    world = library_world(database_url)
    try:
        same_answers(world, tmp_path)
    finally:
        world.registry.close()
