"""Files, jobs and consents follow their rows, however the rows go (a page, account deletion,
the admin)."""

from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from config.files import delete_files_on_commit
from creator.jobs.models import Task
from creator.jobs.runtime import housekeeping
from creator.likeness.models import Consent, ReferencePhoto, Subject
from creator.likeness.services import consents_withdraw, links_expired_notify


@receiver(housekeeping)
def _expired_links_told(sender, **kwargs):
    links_expired_notify()


@receiver(post_delete, sender=ReferencePhoto)
def _photo_files_deleted(sender, instance: ReferencePhoto, **kwargs):
    delete_files_on_commit([f.name for f in instance.files])


@receiver(pre_delete, sender=Subject)
def _subject_deleted(sender, instance: Subject, **kwargs):
    # Its consents stay as revoked records without the selfie's face signature, so credentials
    # of images already made can say so; its jobs go with it (a running one stops at its next
    # step when it finds its row gone).
    live = Consent.objects.filter(subject=instance).exclude(status=Consent.Status.REVOKED)
    consents_withdraw(consent_ids=list(live.values_list("pk", flat=True)), by="creator")
    Consent.objects.filter(subject=instance).update(selfie_embedding=None, distances={})
    Task.objects.filter(scope=instance.scope).delete()
