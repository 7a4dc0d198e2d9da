"""The pHash bands that gallery/fingerprints.py searches by index, filled for existing rows."""

from django.db import migrations, models

# Frozen here on purpose: a migration must keep doing what it did when it was written.
BAND_BITS = (22, 21, 21)
BATCH = 2000


def _bands(phash: str) -> list[int]:
    value, bands, shift = int(phash, 16), [], 64
    for bits in BAND_BITS:
        shift -= bits
        bands.append((value >> shift) & ((1 << bits) - 1))
    return bands


def fill_bands(apps, schema_editor):
    Credential = apps.get_model("gallery", "Credential")
    rows = Credential.objects.exclude(phash="").only("pk", "phash").order_by("pk")
    batch = []
    for credential in rows.iterator(chunk_size=BATCH):
        (
            credential.phash_band0,
            credential.phash_band1,
            credential.phash_band2,
        ) = _bands(credential.phash)
        batch.append(credential)
        if len(batch) == BATCH:
            Credential.objects.bulk_update(batch, ["phash_band0", "phash_band1", "phash_band2"])
            batch = []
    Credential.objects.bulk_update(batch, ["phash_band0", "phash_band1", "phash_band2"])


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="credential",
            name="phash_band0",
            field=models.IntegerField(blank=True, db_index=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="credential",
            name="phash_band1",
            field=models.IntegerField(blank=True, db_index=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="credential",
            name="phash_band2",
            field=models.IntegerField(blank=True, db_index=True, editable=False, null=True),
        ),
        migrations.RunPython(fill_bands, migrations.RunPython.noop, elidable=True),
    ]
