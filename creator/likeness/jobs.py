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
    results, passed = [], {}  # passed: result index -> id of a photo whose face checks passed
    for done, photo in enumerate(pending, 1):
        try:
            verdict = checks.photo_check(photo, engine)
        except OSError:
            verdict = checks.PhotoVerdict(False, intake.DAMAGED)
        if verdict.ok:
            passed[len(results)] = photo.pk
        else:
            photo.delete()
        results.append({"name": str(photo), "ok": verdict.ok, "verdict": verdict.message})
        progress.update(
            done, total, message=f"Checked {photo}", details={"results": results}, force=True
        )
    subject = Subject.objects.filter(pk=subject_id).first()
    if subject is not None:
        services.subject_identity_refresh(subject=subject)
    final = ReferencePhoto.objects.filter(pk__in=passed.values()).in_bulk()
    for index, pk in passed.items():
        photo = final.get(pk)  # None: removed meanwhile
        results[index]["ok"] = photo is not None and photo.status == ReferencePhoto.Status.OK
        if photo is not None:
            results[index]["verdict"] = photo.verdict
    accepted = sum(r["ok"] for r in results)
    progress.update(
        total,
        total,
        message=f"{accepted} of {total} photo(s) accepted",
        details={"results": results},
        force=True,
    )
