"""The C2PA manifest definition for an image Candor made. No Django imports.

C2PA 2.x attributes only *created* assertions to the signer; gathered ones are passed along as
found. What Candor itself did and decided — the actions, the training-and-mining refusal, the
soft bindings and its own record — is created. The author is gathered: Candor relays the handle,
it does not vouch for who holds it (see `CREATOR` below).
"""

from __future__ import annotations

from dataclasses import dataclass

from gallery.provenance.xmp import TRAINED_ALGORITHMIC_MEDIA

# C2PA 2.0 moved training and data mining to the CAWG; the c2pa.* entries are gone.
TRAINING_MINING_LABEL = "cawg.training-mining"
TRAINING_MINING = (
    "cawg.ai_generative_training",
    "cawg.ai_inference",
    "cawg.ai_training",
    "cawg.data_mining",
)
CANDOR_ASSERTION = "org.candor.provenance"
SOFT_BINDING = "c2pa.soft-binding"
# Entity-specific soft-binding algorithm ids (not on the C2PA soft-binding list): the invisible
# watermark's payload, and the 64-bit DCT perceptual hash in hex (imaging/phash.py).
WATERMARK_ALG = "org.candor.watermark.1"
FINGERPRINT_ALG = "org.candor.phash.1"
# The label the parent ingredient gets in a derived file's definition; c2pa.opened points to it.
PARENT_INGREDIENT = "original"
# How each derived file is made from the original, as C2PA actions (gallery/renditions.py).
DERIVED_ACTIONS = {
    "display": ("c2pa.resized",),
    "thumb": ("c2pa.cropped", "c2pa.resized"),
    "preview": ("c2pa.resized", "c2pa.edited"),  # placed on a card with the badge drawn on
}


def derivation(variant: str, *, resized: bool) -> tuple[str, ...]:
    """The actions that made `variant` from the original; a display size that kept the
    original's size was only re-encoded."""
    if variant == "display" and not resized:
        return ("c2pa.transcoded",)
    return DERIVED_ACTIONS[variant]


# c2pa-python cannot sign a CAWG identity assertion through its public API (a Builder signs only
# with a Signer object, and the CAWG X.509 signer lives in settings the SDK uses only for its own
# settings signer), so the creator is stated in gathered assertions instead: the CAWG metadata
# assertion (dc:creator, the C2PA 2.x home for it) and, for readers that still show it, the
# schema.org CreativeWork author C2PA 1.x defined.
CREATOR = "stds.schema-org.CreativeWork"
CAWG_METADATA = "cawg.metadata"


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
    consent_scope: dict | None = None  # what the person shown agreed to: publish, ends, ruled_out
    credential_id: str = ""
    watermark_id: int | str | None = None  # opaque: whatever the watermark carries
    phash: str = ""  # the perceptual hash of the pixels, as a fingerprint soft binding
    # Made from the parent ingredient by these actions: a C2PA action name, or a dict with the
    # action and its parameters ({"action": "c2pa.cropped", "parameters": {...}}).
    derived_actions: tuple[str | dict, ...] = ()
    prompt: str | None = None  # only when the creator opted in
    seed: int | None = None
    source_type: str = TRAINED_ALGORITHMIC_MEDIA  # the IPTC digital source type
    # Opens a parent ingredient; None: when there are derived actions (a display size, say).
    opened: bool | None = None
    # For an image made elsewhere: who declared what ({"by", "declaration", "words", "tool"}),
    # and how the upload's own credentials validated ({"state", "failures", ...}) when it had any.
    declared: dict | None = None
    upload_credentials: dict | None = None
    visible_label: dict | None = None  # a label burned into the pixels (gallery/labels.py)


def _created(label: str, data: dict) -> dict:
    return {"label": label, "data": data, "created": True}


def _soft_binding(alg: str, value: str) -> dict:
    return _created(SOFT_BINDING, {"alg": alg, "blocks": [{"scope": {}, "value": value}]})


def _candor_agent(facts: ImageFacts) -> dict:
    made_with = f" ({facts.base_model})" if facts.base_model else ""
    return {"name": f"Candor {facts.software_version}{made_with}"}


def _first_action(facts: ImageFacts) -> dict:
    """c2pa.opened when there is a parent ingredient, else c2pa.created: by Candor's model, or
    for an upload as its creator declared (with the tool they named as the agent)."""
    agent = _candor_agent(facts)
    declared = facts.declared or {}
    if facts.opened or (facts.opened is None and facts.derived_actions):
        # c2pa-python links the action to the parent ingredient through its label.
        first = {"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT_INGREDIENT]}}
    elif declared:
        first = {"action": "c2pa.created", "parameters": {}}
        agent = {"name": declared["tool"]} if declared.get("tool") else None
    else:
        parameters = {"base_model": facts.base_model, "model": facts.model_name}
        if facts.lora_sha256:
            parameters["lora_sha256"] = facts.lora_sha256
        if facts.base_model_sha256:
            parameters["base_model_sha256"] = facts.base_model_sha256
        if facts.prompt is not None:
            parameters["prompt"] = facts.prompt
        if facts.seed is not None:
            parameters["seed"] = facts.seed
        first = {"action": "c2pa.created", "parameters": parameters}
    if declared:
        first["parameters"]["description"] = f"Declared by {declared['by']}: {declared['words']}"
    first["digitalSourceType"] = facts.source_type
    if agent:
        first["softwareAgent"] = agent
    return first


def _actions(facts: ImageFacts) -> list[dict]:
    agent = _candor_agent(facts)
    actions = [_first_action(facts)]
    for item in facts.derived_actions:
        step = {"action": item} if isinstance(item, str) else dict(item)
        actions.append({**step, "softwareAgent": agent})
    if facts.watermark_id is not None:
        actions.append({"action": "c2pa.watermarked", "softwareAgent": agent})
    return actions


def manifest_definition(facts: ImageFacts) -> dict:
    candor = {"instance": facts.instance_name, "credential_id": facts.credential_id}
    if facts.consent_id is not None:
        candor["consent_record"] = str(facts.consent_id)
    if facts.consent_scope:
        candor["consent_scope"] = facts.consent_scope
    if facts.watermark_id is not None:
        candor["watermark_id"] = facts.watermark_id
    for key in ("declared", "upload_credentials", "visible_label"):
        if getattr(facts, key):
            candor[key] = getattr(facts, key)
    assertions = [
        _created("c2pa.actions", {"actions": _actions(facts)}),
        _created(
            TRAINING_MINING_LABEL,
            {"entries": {key: {"use": "notAllowed"} for key in TRAINING_MINING}},
        ),
        {
            "label": CREATOR,
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
        {
            "label": CAWG_METADATA,
            "data": {
                "@context": {
                    "dc": "http://purl.org/dc/elements/1.1/",
                    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
                },
                "dc:creator": [f"@{facts.author_handle}"],
                "Iptc4xmpCore:CreatorContactInfo": {"Iptc4xmpCore:CiUrlWork": facts.author_url},
            },
        },
        _created(CANDOR_ASSERTION, candor),
    ]
    if facts.watermark_id is not None:
        assertions.append(_soft_binding(WATERMARK_ALG, str(facts.watermark_id)))
    if facts.phash:
        assertions.append(_soft_binding(FINGERPRINT_ALG, facts.phash))
    return {
        "claim_generator_info": [{"name": "Candor", "version": facts.software_version}],
        "title": facts.title,
        "format": facts.mime,
        "assertions": assertions,
    }
