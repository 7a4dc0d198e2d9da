"""What the studio does when something it depends on goes: revoked consent, deleted rows."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from config.files import delete_files_on_commit
from creator.likeness.services import consent_revoked
from creator.studio import services
from creator.studio.models import PersonalModel


@receiver(consent_revoked)
def _models_of_revoked_consent_deleted(sender, subject, consent_ids, **kwargs):
    # Revoking stops training and removes every model trained on the person's photos.
    for model in PersonalModel.objects.filter(subject=subject).select_related("task"):
        services.model_delete(model=model)


@receiver(post_delete, sender=PersonalModel)
def _model_files_deleted(sender, instance: PersonalModel, **kwargs):
    if instance.lora:
        delete_files_on_commit([instance.lora.name])
