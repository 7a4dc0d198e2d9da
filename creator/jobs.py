"""Thin RQ jobs: they take ids, load rows and call services or the engine."""

from creator import photos, subjects
from creator.ml.faces import FaceEngine
from creator.models import ReferencePhoto
from creator.runtime import tracked


@tracked
def photos_check(task, progress, *, photo_ids: list[int]):
    """Face checks for newly uploaded photos; refused photos are deleted with their files."""
    pending = list(
        ReferencePhoto.objects.filter(
            pk__in=photo_ids, status=ReferencePhoto.Status.CHECKING
        ).select_related("subject")
    )
    total = len(pending)
    progress.update(0, total, message="Loading the face models", force=True)
    engine = FaceEngine.get()
    results = []
    for done, photo in enumerate(pending, 1):
        try:
            verdict = subjects.photo_check(photo, engine)
        except OSError:
            verdict = subjects.PhotoVerdict(False, photos.DAMAGED)
        if not verdict.ok:
            photo.delete()
        results.append({"name": str(photo), "ok": verdict.ok, "verdict": verdict.message})
        progress.update(
            done, total, message=f"Checked {photo}", details={"results": results}, force=True
        )
    if task.subject_id:
        subjects.subject_identity_refresh(subject=task.subject)
    accepted = sum(r["ok"] for r in results)
    progress.update(
        total,
        total,
        message=f"{accepted} of {total} photo(s) accepted",
        details={"results": results},
        force=True,
    )


@tracked
def train_model(task, progress, *, model_id: int):
    from creator import training
    from creator.models import PersonalModel

    model = PersonalModel.objects.select_related("subject", "consent").get(pk=model_id)
    training.model_train(model=model, progress=progress)


@tracked
def generate_images(task, progress, *, generation_id: int):
    from creator import training
    from creator.models import Generation

    generation = Generation.objects.select_related("model__consent", "owner").get(pk=generation_id)
    training.generation_run(generation=generation, progress=progress)
