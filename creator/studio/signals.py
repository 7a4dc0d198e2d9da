"""What the studio does when something it depends on goes: revoked consent, deleted rows."""

from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse

from config.files import delete_files_on_commit
from creator.jobs.runtime import housekeeping, task_finished
from creator.likeness.services import consent_revoked
from creator.notices import webhooks
from creator.notices.services import notify
from creator.studio import services
from creator.studio.models import Generation, PersonalModel


@receiver(consent_revoked)
def _models_of_revoked_consent_deleted(sender, subject, consent_ids, **kwargs):
    # Revoking stops training and removes every model trained on the person's photos.
    for model in PersonalModel.objects.filter(subject=subject).select_related("task"):
        services.model_delete(model=model)


@receiver(post_delete, sender=PersonalModel)
def _model_files_deleted(sender, instance: PersonalModel, **kwargs):
    if instance.lora:
        delete_files_on_commit([instance.lora.name])


@receiver(task_finished)
def _owner_told_when_a_job_ends(sender, task, **kwargs):
    """Training that ends either way, and generation that fails, are worth a notice."""
    if task.kind == "training":
        model = PersonalModel.objects.filter(task=task).select_related("subject").first()
        if model is None:
            return
        if task.status == task.Status.SUCCEEDED:
            notify(
                user=task.owner,
                kind="training_succeeded",
                title=f"{model.name} is trained",
                body="Open the model to see its samples and make images from a prompt.",
                link=task.link,
            )
        elif task.status == task.Status.FAILED:
            notify(
                user=task.owner,
                kind="training_failed",
                title=f"Training {model.name} failed",
                body=f"{task.error} Open the model to retry.",
                link=task.link,
            )
    elif task.kind == "generation" and task.status == task.Status.FAILED:
        notify(
            user=task.owner,
            kind="generation_failed",
            title="Making images failed",
            body=task.error,
            link=task.link,
            email=False,
        )


@receiver(task_finished)
def _webhooks_when_a_job_ends(sender, task, **kwargs):
    """Training and generation that end, either way, are webhook events (a cancel is not)."""
    outcome = {task.Status.SUCCEEDED: "succeeded", task.Status.FAILED: "failed"}.get(task.status)
    if outcome is None:
        return
    data = {"task_id": str(task.pk), "state": task.status}
    if outcome == "failed":
        data["error"] = task.error
    if task.kind == "training":
        model = PersonalModel.objects.filter(task=task).first()
        if model is None:
            return
        data |= {"model_id": model.pk, "subject_id": model.subject_id}
        data["url"] = webhooks.site_url(reverse("model_detail", args=[model.pk]))
    elif task.kind == "generation":
        generation = Generation.objects.filter(task=task).first()
        if generation is None:
            return
        data |= {"generation_id": generation.pk, "model_id": generation.model_id}
        data["post_ids"] = [str(pk) for pk in generation.post_ids]
        data["url"] = webhooks.site_url(reverse("model_detail", args=[generation.model_id]))
    else:
        return
    webhooks.emit(user=task.owner_id, event=f"{task.kind}.{outcome}", data=data)


@receiver(housekeeping)
def _webhooks_sent(sender, **kwargs):
    # Webhook retries fall due over a day; the worker sends them (creator/notices/webhooks.py).
    # Connected here because notices sits below the job runtime and can't hear its signals.
    webhooks.deliveries_sweep()
