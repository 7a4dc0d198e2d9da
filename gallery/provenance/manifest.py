"""The C2PA manifest definition for an image Candor made. No Django imports."""

from __future__ import annotations

from dataclasses import dataclass

from gallery.provenance.xmp import TRAINED_ALGORITHMIC_MEDIA

TRAINING_MINING = (
    "c2pa.ai_generative_training",
    "c2pa.ai_inference",
    "c2pa.ai_training",
    "c2pa.data_mining",
)
CANDOR_ASSERTION = "org.candor.provenance"


@dataclass(frozen=True)
class ImageFacts:
    title: str
    mime: str  # image/jpeg, image/png, image/webp
    author_handle: str
    author_url: str
    instance_name: str
    software_version: str
    base_model: str
    model_name: str
    lora_sha256: str = ""
    base_model_sha256: str = ""
    consent_id: int | None = None
    credential_id: str = ""
    watermark_id: int | None = None
    prompt: str | None = None  # only when the creator opted in
    seed: int | None = None


def manifest_definition(facts: ImageFacts) -> dict:
    parameters = {"base_model": facts.base_model, "model": facts.model_name}
    if facts.lora_sha256:
        parameters["lora_sha256"] = facts.lora_sha256
    if facts.base_model_sha256:
        parameters["base_model_sha256"] = facts.base_model_sha256
    if facts.prompt is not None:
        parameters["prompt"] = facts.prompt
    if facts.seed is not None:
        parameters["seed"] = facts.seed
    candor = {"instance": facts.instance_name, "credential_id": facts.credential_id}
    if facts.consent_id is not None:
        candor["consent_record"] = str(facts.consent_id)
    if facts.watermark_id is not None:
        candor["watermark_id"] = facts.watermark_id
    return {
        "claim_generator_info": [{"name": "Candor", "version": facts.software_version}],
        "title": facts.title,
        "format": facts.mime,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {
                                "name": f"Candor {facts.software_version} ({facts.base_model})"
                            },
                            "parameters": parameters,
                        }
                    ]
                },
            },
            {
                "label": "c2pa.training-mining",
                "data": {"entries": {key: {"use": "notAllowed"} for key in TRAINING_MINING}},
            },
            {
                "label": "stds.schema-org.CreativeWork",
                "data": {
                    "@context": "https://schema.org",
                    "@type": "CreativeWork",
                    "author": [
                        {
                            "@type": "Person",
                            "name": f"@{facts.author_handle}",
                            "url": facts.author_url,
                        }
                    ],
                },
            },
            {"label": CANDOR_ASSERTION, "data": candor},
        ],
    }
