"""The studio's RQ jobs: thin, they take ids and call the work in `work.py`."""

from creator.jobs.runtime import tracked
from creator.studio import work
from creator.studio.models import Generation, PersonalModel


@tracked
def train_model(task, progress, *, model_id: int):
    model = PersonalModel.objects.select_related("subject", "consent").get(pk=model_id)
    work.model_train(model=model, progress=progress)


@tracked
def generate_images(task, progress, *, generation_id: int):
    generation = Generation.objects.select_related(
        "model__consent", "model__subject__owner", "owner"
    ).get(pk=generation_id)
    work.generation_run(generation=generation, progress=progress)
