"""The engine alone (creator.engine): tiny model at 64 px, a few steps, real torch and diffusers."""

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from creator.engine import base_models as models
from creator.engine import tiny
from creator.engine.device import placement
from creator.engine.generate import GenerationRequest, LoraRef, PipelineCache
from creator.engine.options import full_prompt, size_for
from creator.engine.train import TrainConfig, TrainingStopped, train_lora
from tests import images


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("models")
    tiny.tiny_model_path(cache)
    return cache


@pytest.fixture(scope="session")
def crops(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("crops")
    paths = []
    for i in range(6):
        path = folder / f"crop{i}.jpg"
        images.astronaut_variant(i).save(path, quality=95)
        paths.append(path)
    return paths


def fresh_pipe(model_cache):
    return models.load_pipeline(models.resolve("builtin:tiny", model_cache), placement())


def config(**overrides) -> TrainConfig:
    values = {"resolution": 64, "steps": 6, "checkpoint_every": 3, "sample_steps": 4, "seed": 3}
    return TrainConfig(**{**values, **overrides})


@pytest.fixture(scope="session")
def trained(model_cache, crops, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    return train_lora(
        config(),
        pipe=fresh_pipe(model_cache),
        base_id="builtin:tiny",
        images=crops,
        out_dir=out,
        metadata={"candor.consent_id": "42"},
    )


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def lora_tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118


def test_the_tiny_model_is_built_offline_and_the_same_every_time(tmp_path, model_cache):
    again = tiny.tiny_model_path(tmp_path)
    for part in ("unet", "vae", "text_encoder"):
        ours = model_cache / "tiny-sd-v1" / part / "diffusion_pytorch_model.safetensors"
        if not ours.exists():
            ours = next((model_cache / "tiny-sd-v1" / part).glob("*.safetensors"))
        theirs = again / part / ours.name
        assert (
            hashlib.sha256(ours.read_bytes()).digest()
            == hashlib.sha256(theirs.read_bytes()).digest()
        )
    assert (again / "tokenizer" / "tokenizer_config.json").exists()


def test_the_lora_file_has_only_lora_keys_and_its_provenance(trained, crops):
    tensors = lora_tensors(trained.lora_path)
    assert tensors and all(".lora" in key and key.startswith("unet.") for key in tensors)
    with safe_open(str(trained.lora_path), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["candor.base_model"] == "builtin:tiny"
    assert meta["candor.consent_id"] == "42"
    assert json.loads(meta["candor.config"])["rank"] == 4
    hashes = json.loads(meta["candor.training_images_sha256"])
    assert hashes == [hashlib.sha256(p.read_bytes()).hexdigest() for p in crops]
    adapter = json.loads(meta["lora_adapter_metadata"])
    assert adapter["unet.lora_alpha"] == 4 and adapter["unet.r"] == 4
    assert trained.sha256 == hashlib.sha256(trained.lora_path.read_bytes()).hexdigest()
    assert [s.step for s in trained.samples] == [3, 6]
    assert all(Path(s.path).exists() for s in trained.samples)


def test_generation_with_the_lora_differs_from_the_base_and_seeds_repeat_exactly(
    trained, model_cache
):
    cache = PipelineCache(lambda: fresh_pipe(model_cache))
    base = GenerationRequest(prompt="a photo of ohwx person", seed=7, steps=4, width=64, height=64)
    with_lora = GenerationRequest(
        prompt="a photo of ohwx person", seed=7, steps=4, width=64, height=64,
        lora=LoraRef("mine", str(trained.lora_path)),
    )  # fmt: skip

    first_base = png(cache.generate(base)[0])
    first_lora = png(cache.generate(with_lora)[0])
    again_base = png(cache.generate(base)[0])
    again_lora = png(cache.generate(with_lora)[0])

    assert first_base != first_lora
    assert first_base == again_base  # switching adapters off is exact
    assert first_lora == again_lora
    assert cache.base_loads == 1 and cache.adapter_loads == 1


def test_images_in_a_batch_are_each_reproducible_from_their_own_seed(model_cache):
    cache = PipelineCache(lambda: fresh_pipe(model_cache))
    batch = cache.generate(
        GenerationRequest(prompt="x", seed=10, steps=3, width=64, height=64, count=2)
    )
    alone = cache.generate(GenerationRequest(prompt="x", seed=11, steps=3, width=64, height=64))
    # Batched matrix kernels may round the last bit differently from single ones, so a pixel
    # can be one level apart; the image is the same. (The same request repeated is bit-exact.)
    apart = np.abs(np.asarray(batch[1], dtype=int) - np.asarray(alone[0], dtype=int))
    assert apart.max() <= 1 and (apart > 0).mean() < 0.01
    again = cache.generate(
        GenerationRequest(prompt="x", seed=10, steps=3, width=64, height=64, count=2)
    )
    assert [png(i) for i in again] == [png(i) for i in batch]
    assert png(batch[0]) != png(batch[1])


def test_the_cache_keeps_at_most_n_adapters(trained, model_cache, tmp_path):
    cache = PipelineCache(lambda: fresh_pipe(model_cache), max_adapters=2)
    for name in ("a", "b", "c", "a"):
        cache.generate(
            GenerationRequest(
                prompt="x",
                seed=1,
                steps=2,
                width=64,
                height=64,
                lora=LoraRef(name, str(trained.lora_path)),
            )
        )
    pipe = cache.pipeline()
    assert set(pipe.get_list_adapters()["unet"]) == {"c", "a"}
    assert cache.base_loads == 1 and cache.adapter_loads == 4


def test_a_stopped_run_resumes_from_its_checkpoint_and_ends_where_an_unbroken_run_does(
    model_cache, crops, tmp_path
):
    unbroken = train_lora(
        config(steps=8, checkpoint_every=4), pipe=fresh_pipe(model_cache), base_id="builtin:tiny",
        images=crops, out_dir=tmp_path / "a",
    )  # fmt: skip
    steps_seen = []

    def stop_at_step_7() -> bool:
        steps_seen.append(1)
        return len(steps_seen) == 7

    with pytest.raises(TrainingStopped) as stopped:
        train_lora(
            config(steps=8, checkpoint_every=4), pipe=fresh_pipe(model_cache),
            base_id="builtin:tiny", images=crops, out_dir=tmp_path / "b",
            should_stop=stop_at_step_7,
        )  # fmt: skip
    assert stopped.value.step == 6
    resumed = train_lora(
        config(steps=8, checkpoint_every=4), pipe=fresh_pipe(model_cache), base_id="builtin:tiny",
        images=crops, out_dir=tmp_path / "b",
    )  # fmt: skip

    assert resumed.resumed_from == 4
    a, b = lora_tensors(unbroken.lora_path), lora_tensors(resumed.lora_path)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_progress_is_reported_with_loss_and_eta(model_cache, crops, tmp_path):
    reports = []
    train_lora(
        config(steps=4), pipe=fresh_pipe(model_cache), base_id="builtin:tiny", images=crops,
        out_dir=tmp_path, on_progress=reports.append,
    )  # fmt: skip
    final = reports[-1]
    assert (final.step, final.total, final.eta_seconds) == (4, 4, 0.0)
    assert final.loss > 0 and len(final.losses) == 4
    assert reports[0].phase == "Preparing the photos"


def test_prior_preservation_trains_with_class_images(model_cache, crops, tmp_path):
    result = train_lora(
        config(steps=2, prior_preservation=True, num_class_images=2), pipe=fresh_pipe(model_cache),
        base_id="builtin:tiny", images=crops, out_dir=tmp_path,
    )  # fmt: skip
    assert result.lora_path.exists()


def test_a_base_model_that_predicts_neither_noise_nor_velocity_is_refused(
    model_cache, crops, tmp_path
):
    pipe = fresh_pipe(model_cache)
    pipe.scheduler.register_to_config(prediction_type="sample")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"prediction_type='sample'.*'epsilon', 'v_prediction'"):
        train_lora(
            config(steps=1), pipe=pipe, base_id="builtin:tiny", images=crops, out_dir=out,
            should_stop=lambda: pytest.fail("refused only after training began"),
        )  # fmt: skip
    assert not (out / "lora.safetensors").exists()
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prior_preservation": True}, "prior_preservation needs a class_prompt"),
        ({"resolution": 60}, "multiple of 8"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"num_class_images": 3}, "only makes sense with prior_preservation"),
    ],
)
def test_incompatible_options_fail_before_loading_anything(overrides, message):
    with pytest.raises(ValueError, match=message):
        config(**overrides).validate()


def test_half_precision_needs_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")  # the check only applies without one
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        placement("fp16")


def test_base_models_that_cannot_load_name_the_setting(tmp_path, monkeypatch, model_cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.BaseModelError, match="CANDOR_BASE_MODEL='/no/such/model'"):
        models.resolve("/no/such/model", model_cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.BaseModelError, match=r"has no model_index\.json"):
        models.resolve(str(tmp_path / "empty"), model_cache)
    hub = models.resolve("some-org/some-model", model_cache)
    with pytest.raises(models.BaseModelError, match="not downloaded here"):
        models.load_pipeline(hub, placement())


def test_a_local_diffusers_folder_loads_through_the_same_path(model_cache):
    folder = model_cache / "tiny-sd-v1"
    base = models.resolve(str(folder), model_cache)
    assert base.kind == "folder"
    pipe = models.load_pipeline(base, placement())
    assert models.native_resolution(pipe) == 64


def test_prompts_get_the_subject_token_and_the_style():
    assert full_prompt("@me on a beach", "none", with_subject=True) == (
        "ohwx person on a beach",
        "",
    )
    # Someone else's model is written with @them; it means the same subject token.
    assert full_prompt("@them on a beach", "none", with_subject=True)[0] == "ohwx person on a beach"
    text, negative = full_prompt("on a beach", "watercolor", with_subject=True)
    assert text.startswith("a photo of ohwx person, on a beach, watercolor")
    assert negative == "photo, photograph"
    assert size_for("portrait", 512) == (512, 640)
    assert size_for("landscape", 64) == (96, 64)


@pytest.mark.parametrize(
    ("spec", "label"),
    [
        ("/srv/models/stable-diffusion-v1-5/", "stable-diffusion-v1-5"),
        ("~/private/realisticVision_v60.safetensors", "realisticVision_v60"),
        ("./models/sdxl", "sdxl"),
        ("stabilityai/stable-diffusion-xl-base-1.0", "stabilityai/stable-diffusion-xl-base-1.0"),
    ],
)
def test_a_base_model_is_named_publicly_without_its_path(spec, label):
    from creator.engine.options import base_model_label

    assert base_model_label(spec) == label
    assert "/srv" not in base_model_label(spec) and "private" not in base_model_label(spec)
