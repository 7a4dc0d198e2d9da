import django.db.models.deletion
from django.db import migrations, models


def link_photos_being_checked(apps, schema_editor):
    """Photos still CHECKING point at the photo_check job that lists them, so one whose job
    already ended shows as stopped rather than "Checking" forever."""
    Task = apps.get_model("jobs", "Task")
    ReferencePhoto = apps.get_model("likeness", "ReferencePhoto")
    waiting = set(ReferencePhoto.objects.filter(status="checking").values_list("pk", flat=True))
    if not waiting:
        return
    for task in Task.objects.filter(kind="photo_check").order_by("created_at"):
        ids = waiting.intersection((task.job_kwargs or {}).get("photo_ids") or [])
        if ids:
            ReferencePhoto.objects.filter(pk__in=ids).update(check_task=task)


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
        ("likeness", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="referencephoto",
            name="check_task",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="jobs.task",
            ),
        ),
        migrations.RunPython(link_photos_being_checked, migrations.RunPython.noop),
    ]
