"""Personal models (trained LoRAs) and the generations made from them."""

from django.conf import settings
from django.db import models

from creator.engine import options
from creator.jobs.models import Task
from creator.likeness.models import Consent, Subject


class PersonalModel(models.Model):
    """A trained personal model (a LoRA) of a subject, made under one consent: a training run."""

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="models")
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="models")
    task = models.OneToOneField(Task, on_delete=models.SET_NULL, null=True, blank=True)
    name = models.CharField(max_length=80)  # the owner's own name for it, never shown publicly
    number = models.PositiveIntegerField(default=1)  # the subject's first, second… model
    base_model = models.CharField(max_length=300)  # the setting: may be a private path
    base_model_label = models.CharField(max_length=120, blank=True)  # its public name
    config = models.JSONField(default=dict, blank=True)
    lora = models.FileField(max_length=200, blank=True)
    lora_sha256 = models.CharField(max_length=64, blank=True)
    best_step = models.PositiveIntegerField(null=True, blank=True)
    seconds_per_step = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"Model {self.pk} of {self.subject}"

    def sample_file(self, step: int) -> str:
        """The stored name of the training sample drawn at `step` ("" when there is none)."""
        samples = (self.task.details.get("samples", []) if self.task else []) or []
        return next((s["name"] for s in samples if s["step"] == step), "")

    @property
    def public_name(self) -> str:
        """How posts and credentials name it: the creator's handle, not the depicted person."""
        return f"@{self.subject.owner.handle} · model {self.number}"


class Generation(models.Model):
    """One request to make images from a personal model; its images become gallery posts."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generations"
    )
    model = models.ForeignKey(PersonalModel, on_delete=models.CASCADE, related_name="generations")
    task = models.OneToOneField(Task, on_delete=models.SET_NULL, null=True, blank=True)
    prompt = models.TextField(max_length=1000)
    negative_prompt = models.TextField(max_length=1000, blank=True)
    style = models.CharField(max_length=20, default="none")
    size = models.CharField(max_length=20, default="square")
    steps = models.PositiveIntegerField(default=25)
    guidance = models.FloatField(default=7.0)
    seed = models.BigIntegerField()
    count = models.PositiveSmallIntegerField(default=1)
    # The prompt goes into the images' signed credentials only when the creator says so.
    include_prompt = models.BooleanField(default=False)
    post_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.prompt[:40]

    @property
    def style_label(self) -> str:
        return options.STYLES.get(self.style, (self.style,))[0]
