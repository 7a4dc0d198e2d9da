"""Finding a near-identical image by pHash through the band indexes, on SQLite and PostgreSQL."""

import io
import random

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from gallery import fingerprints, signing, verify
from gallery.models import PHASH_BAND_FIELDS, Credential, phash_bands
from imaging.phash import hamming, phash
from tests import images


def _flip(phash: str, bits: int, rng: random.Random) -> str:
    value = int(phash, 16)
    for position in rng.sample(range(64), bits):
        value ^= 1 << position
    return f"{value:016x}"


def _store(phashes) -> list[Credential]:
    return Credential.objects.bulk_create(
        Credential(variant="display", mime="image/jpeg", phash=p) for p in phashes
    )


def test_it_splits_the_hash_into_bands_that_rebuild_it():
    bands = phash_bands("f0e1d2c3b4a59687")
    assert (bands[0] << 42) | (bands[1] << 21) | bands[2] == 0xF0E1D2C3B4A59687
    assert phash_bands("") == (None, None, None)


def test_saving_a_credential_fills_its_bands(db):
    credential = Credential.objects.create(variant="original", mime="image/png")
    assert credential.phash_band0 is None
    credential.phash = "00000fffff00000f"
    credential.save(update_fields=["phash"])  # how post_create stores it
    credential.refresh_from_db()
    assert (
        credential.phash_band0,
        credential.phash_band1,
        credential.phash_band2,
    ) == phash_bands("00000fffff00000f")


def test_bulk_created_credentials_have_their_bands(db):
    _store(["0123456789abcdef"])
    assert Credential.objects.get().phash_band2 == phash_bands("0123456789abcdef")[2]


def test_it_finds_every_stored_hash_within_the_similarity_bits(db):
    rng = random.Random(7)
    stored = [f"{rng.getrandbits(64):016x}" for _ in range(300)]
    credentials = _store(stored)
    for credential in credentials[:120]:
        # Exactly at the limit, where the pigeonhole argument is tightest, and below it.
        for bits in (verify.SIMILARITY_BITS, rng.randint(0, verify.SIMILARITY_BITS)):
            query = _flip(credential.phash, bits, rng)
            found = fingerprints.nearest(query, max_bits=verify.SIMILARITY_BITS, limit=None)
            assert (bits, credential.pk) in found


def test_it_finds_hashes_whose_differences_crowd_into_two_bands(db):
    """The worst case for band lookups: no band is equal, every band differs in some bits."""
    (credential,) = _store(["0000000000000000"])
    # 3 + 3 bits in bands 0 and 1, 2 in band 2: 8 bits apart, no band identical.
    query = f"{(0b111 << 60) | (0b111 << 40) | 0b11:016x}"
    assert hamming(query, credential.phash) == 8
    assert fingerprints.nearest(query, max_bits=8) == [(8, credential.pk)]


def test_it_ignores_hashes_further_apart_and_ranks_the_nearest_first(db):
    rng = random.Random(3)
    base = f"{rng.getrandbits(64):016x}"
    _far, near, nearer = _store(
        [_flip(base, verify.SIMILARITY_BITS + 1, rng), _flip(base, 5, rng), _flip(base, 1, rng)]
    )
    assert fingerprints.nearest(base, max_bits=verify.SIMILARITY_BITS, limit=None) == [
        (1, nearer.pk),
        (5, near.pk),
    ]
    assert fingerprints.nearest(base, max_bits=verify.SIMILARITY_BITS) == [(1, nearer.pk)]


def test_it_asks_the_database_for_band_matches_not_every_row(db):
    rng = random.Random(1)
    _store(f"{rng.getrandbits(64):016x}" for _ in range(50))
    with CaptureQueriesContext(connection) as queries:
        fingerprints.nearest("0123456789abcdef", max_bits=verify.SIMILARITY_BITS)
    (query,) = queries.captured_queries
    for name in PHASH_BAND_FIELDS:
        assert name in query["sql"]


def test_the_database_uses_the_band_indexes(db):
    condition = fingerprints.candidates_filter("0123456789abcdef", verify.SIMILARITY_BITS)
    sql, params = (
        Credential.objects.filter(condition).values_list("pk", "phash").query.sql_with_params()
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: prefer scans otherwise
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan" not in plan, plan
            for name in PHASH_BAND_FIELDS:
                assert name in plan, plan
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            steps = [str(row[-1]) for row in cursor.fetchall()]
            assert not any(step.startswith("SCAN") for step in steps), steps  # no full scan
            for name in PHASH_BAND_FIELDS:
                assert any(name in step and "USING INDEX" in step for step in steps), steps


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_bands_of_existing_credentials():
    executor = MigrationExecutor(connection)
    executor.migrate([("gallery", "0001_initial")])
    old = executor.loader.project_state([("gallery", "0001_initial")]).apps
    old.get_model("gallery", "Credential").objects.create(
        variant="display", mime="image/jpeg", phash="fedcba9876543210"
    )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    credential = Credential.objects.get(phash="fedcba9876543210")
    assert (
        credential.phash_band0,
        credential.phash_band1,
        credential.phash_band2,
    ) == phash_bands("fedcba9876543210")
    assert fingerprints.nearest("fedcba9876543211", max_bits=8) == [(1, credential.pk)]


def test_verify_finds_a_stripped_copy_through_the_index_without_reading_every_row(
    db, settings, tmp_path
):
    settings.C2PA_KEYS_DIR = tmp_path / "keys"
    signing.reset()
    picture = images.astronaut_variant(3).resize((256, 256))  # never marked: pHash only
    rng = random.Random(5)
    _store(f"{rng.getrandbits(64):016x}" for _ in range(200))
    (original,) = _store([phash(picture)])
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    with CaptureQueriesContext(connection) as queries:
        result = verify.verify_bytes(buffer.getvalue())
    signing.reset()
    assert result.verdict == verify.RECOVERED_BY_SIMILARITY
    assert result.credential == original
    reads = [q["sql"] for q in queries.captured_queries if '"phash"' in q["sql"]]
    assert reads and all("phash_band0" in sql for sql in reads), reads
