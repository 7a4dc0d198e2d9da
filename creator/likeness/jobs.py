"""The photo-check job: thin, it takes ids and calls the checks and services."""

from creator.engine.faces import FaceEngine
from creator.jobs.runtime import tracked
from creator.likeness import checks, intake, services
from creator.likeness.models import ReferencePhoto, Subject


@tracked
def photos_check(task, progress, *, subject_id: int, photo_ids: list[int]):
    """Face checks for newly uploaded photos; refused photos are deleted with their files.

    A photo becomes usable only in the identity check at the end: cancelled, failed or killed
    before it, the job leaves its photos CHECKING, which pages show as stopped."""
    pending = list(
        ReferencePhoto.objects.filter(
            pk__in=photo_ids, status=ReferencePhoto.Status.CHECKING
        ).select_related("subject")
    )
    total = len(pending)
    progress.update(0, total, message="Loading the face models", force=True)
    engine = FaceEngine.get()
    # kept: beside each result, the id of a photo kept for the identity check (None when
    # refused and deleted), so the summary can be told again from its photo when that changes.
    results, kept = [], []
    for done, photo in enumerate(pending, 1):
        try:
            verdict = checks.photo_check(photo, engine)
        except OSError:
            verdict = checks.PhotoVerdict(False, intake.DAMAGED)
        result = {"name": str(photo), "ok": False, "verdict": verdict.message}
        if verdict.ok:  # not ok yet: only the identity check below makes it usable
            results.append({**result, "pending": True})
            kept.append(photo.pk)
        else:
            photo.delete()
            results.append(result)
            kept.append(None)
        details = {"results": results, "photos": kept}
        progress.update(done, total, message=f"Checked {photo}", details=details, force=True)
    subject = Subject.objects.filter(pk=subject_id).first()
    if subject is not None:
        services.subject_identity_refresh(subject=subject)
    results = services.photo_check_results(results, kept)  # as the photos' cards say
    accepted = sum(r["ok"] for r in results)
    if subject is not None:
        services.photos_checked_event(subject=subject, accepted=accepted, checked=total)
    progress.update(
        total,
        total,
        message=checks.CHECK_SUMMARY.format(accepted=accepted, total=total),
        details={"results": results, "photos": kept},
        force=True,
    )
