"""Every base-model family (SD 1.x, SDXL, FLUX.1) through the real trainer and generator, on the
built-in tiny models at 64 px: shapes, determinism, resume, LoRA load/unload (never image
content)."""

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from creator.engine import base_models as models
from creator.engine import families, tiny
from creator.engine.device import placement
from creator.engine.generate import GenerationRequest, LoraMismatch, LoraRef, PipelineCache
from creator.engine.train import TrainConfig, TrainingStopped, face_masks, train_lora
from tests import images

SPECS = {"sd": "builtin:tiny", "sdxl": "builtin:tiny-sdxl", "flux": "builtin:tiny-flux"}
DENOISER_PREFIX = {"sd": "unet.", "sdxl": "unet.", "flux": "transformer."}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for spec in SPECS.values():
        tiny.tiny_model_path(folder, spec)
    return folder


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("crops")
    paths = []
    for i in range(3):
        path = folder / f"crop{i}.jpg"
        images.astronaut_variant(i).save(path, quality=95)
        paths.append(path)
    return paths


def pipe_for(family: str, cache_dir: Path):
    return models.load_pipeline(models.resolve(SPECS[family], cache_dir), placement())


def config(**overrides) -> TrainConfig:
    values = {"resolution": 64, "steps": 4, "checkpoint_every": 2, "sample_steps": 2, "seed": 5}
    return TrainConfig(**{**values, **overrides})


def lora_tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def loras(cache_dir, crops, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Two LoRAs per family (different seeds), trained once for the module."""
    out = tmp_path_factory.mktemp("loras")
    made = {}
    for family in SPECS:
        paths = []
        for seed in (1, 2):
            result = train_lora(
                config(seed=seed), pipe=pipe_for(family, cache_dir), base_id=SPECS[family],
                images=crops, out_dir=out / f"{family}-{seed}",
            )  # fmt: skip
            paths.append(result.lora_path)
        made[family] = tuple(paths)
    return made


@pytest.mark.parametrize("family", SPECS)
def test_each_built_in_model_is_detected_as_its_family(family, cache_dir):
    base = models.resolve(SPECS[family], cache_dir)
    assert base.family.name == family
    folder = models.resolve(base.source, cache_dir)  # the same folder, configured as a path
    assert (folder.kind, folder.family.name) == ("folder", family)
    pipe = models.load_pipeline(folder, placement())
    assert type(pipe).__name__ == families.FAMILIES[family].pipeline_class
    assert models.native_resolution(pipe) == 64


@pytest.mark.parametrize("family", SPECS)
def test_a_lora_trained_on_each_family_carries_its_family_and_denoiser_keys(family, loras):
    path = loras[family][0]
    keys = lora_tensors(path)
    assert keys and all(k.startswith(DENOISER_PREFIX[family]) for k in keys)
    assert all(torch.isfinite(t).all() for t in keys.values())
    assert families.lora_family(path) == family


@pytest.mark.parametrize("family", SPECS)
def test_a_stopped_run_resumes_and_ends_where_an_unbroken_one_does(
    family, cache_dir, crops, tmp_path
):
    unbroken = train_lora(
        config(steps=6, checkpoint_every=3), pipe=pipe_for(family, cache_dir),
        base_id=SPECS[family], images=crops, out_dir=tmp_path / "a",
    )  # fmt: skip
    calls = []

    def stop_before_step_5() -> bool:
        calls.append(1)
        return len(calls) == 5

    with pytest.raises(TrainingStopped):
        train_lora(
            config(steps=6, checkpoint_every=3), pipe=pipe_for(family, cache_dir),
            base_id=SPECS[family], images=crops, out_dir=tmp_path / "b",
            should_stop=stop_before_step_5,
        )  # fmt: skip
    resumed = train_lora(
        config(steps=6, checkpoint_every=3), pipe=pipe_for(family, cache_dir),
        base_id=SPECS[family], images=crops, out_dir=tmp_path / "b",
    )  # fmt: skip

    assert resumed.resumed_from == 3
    a, b = lora_tensors(unbroken.lora_path), lora_tensors(resumed.lora_path)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.losses == unbroken.losses


@pytest.mark.parametrize("family", SPECS)
def test_two_loras_generate_differently_and_unloading_restores_the_base_exactly(
    family, cache_dir, loras
):
    cache = PipelineCache(lambda: pipe_for(family, cache_dir))
    first, second = (LoraRef(f"{family}-{i}", str(p)) for i, p in enumerate(loras[family]))

    def draw(lora):
        request = GenerationRequest(
            prompt="a photo of ohwx person", negative_prompt="blurry", seed=11, steps=3,
            width=64, height=64, lora=lora,
        )  # fmt: skip
        return png(cache.generate(request)[0])

    base = draw(None)
    one, two = draw(first), draw(second)
    assert len({base, one, two}) == 3
    assert draw(None) == base  # unloading is exact: adapters are switched off, never fused
    assert draw(first) == one
    assert cache.base_loads == 1 and cache.adapter_loads == 2


@pytest.mark.parametrize("family", ["sd", "flux"])
def test_hot_swapping_loras_in_one_slot_gives_the_same_images_as_separate_adapters(
    family, cache_dir, loras
):
    separate = PipelineCache(lambda: pipe_for(family, cache_dir))
    swapping = PipelineCache(lambda: pipe_for(family, cache_dir), hotswap=True, hotswap_rank=8)
    refs = [LoraRef(f"{family}-{i}", str(p)) for i, p in enumerate(loras[family])]
    for lora in [refs[0], refs[1], None, refs[0]]:
        request = GenerationRequest(
            prompt="a photo", seed=3, steps=2, width=64, height=64, lora=lora
        )
        assert png(swapping.generate(request)[0]) == png(separate.generate(request)[0])
    adapters = swapping.pipeline().get_list_adapters()
    assert list(adapters.values()) == [["candor"]]  # one slot, swapped in place


@pytest.mark.parametrize(("trained", "loaded"), [("sdxl", "flux"), ("flux", "sd"), ("sd", "sdxl")])
def test_a_lora_from_another_family_is_refused_by_name(trained, loaded, cache_dir, loras):
    cache = PipelineCache(lambda: pipe_for(loaded, cache_dir))
    request = GenerationRequest(
        prompt="x",
        seed=1,
        steps=2,
        width=64,
        height=64,
        lora=LoraRef("other", str(loras[trained][0])),
    )
    with pytest.raises(LoraMismatch, match=families.FAMILIES[trained].label):
        cache.generate(request)
    request = GenerationRequest(prompt="x", seed=1, steps=2, width=64, height=64)
    assert cache.generate(request)  # the base still works, nothing half-loaded


def test_an_untagged_lora_with_other_shapes_is_refused_and_leaves_no_adapter(
    cache_dir, loras, tmp_path
):
    untagged = tmp_path / "untagged.safetensors"
    save_file(lora_tensors(loras["sd"][0]), str(untagged))  # SD keys, no Candor metadata
    cache = PipelineCache(lambda: pipe_for("sdxl", cache_dir))
    request = GenerationRequest(
        prompt="x", seed=1, steps=2, width=64, height=64, lora=LoraRef("u", str(untagged))
    )
    with pytest.raises(LoraMismatch, match="can't be loaded into the Stable Diffusion XL"):
        cache.generate(request)
    assert not cache.pipeline().get_list_adapters().get("unet")


def test_an_unsupported_pipeline_folder_is_refused_naming_what_it_is(cache_dir, tmp_path):
    folder = tmp_path / "sd3"
    shutil.copytree(cache_dir / "tiny-sd-v1", folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(
        json.dumps({**index, "_class_name": "StableDiffusion3Pipeline"})
    )
    with pytest.raises(models.BaseModelError, match="is a StableDiffusion3Pipeline model; Candor"):
        models.resolve(str(folder), cache_dir)


def test_a_half_downloaded_model_is_refused_naming_the_missing_parts(cache_dir, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(cache_dir / "tiny-flux-v1", folder)
    for weights in (folder / "transformer").glob("*.safetensors"):
        weights.unlink()
    shutil.rmtree(folder / "text_encoder_2")
    (folder / "vae" / "diffusion_pytorch_model.safetensors.incomplete").write_bytes(b"")
    with pytest.raises(models.BaseModelError) as refused:
        models.resolve(str(folder), cache_dir)
    message = str(refused.value)
    assert "is incomplete" in message and "Download the model again" in message
    assert "text_encoder_2/ is missing" in message
    assert "transformer/ has no weights" in message
    assert "vae/ has a file still downloading" in message


@pytest.mark.parametrize(
    ("keys", "family"),
    [
        (["model.diffusion_model.input_blocks.0.0.weight"], "sd"),
        (["conditioner.embedders.1.model.ln_final.weight", "model.diffusion_model.x"], "sdxl"),
        (["double_blocks.0.img_attn.qkv.weight"], "flux"),
    ],
)
def test_a_single_file_checkpoint_is_recognised_by_its_tensor_names(keys, family, tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({k: torch.zeros(1) for k in keys}, str(path))
    assert families.family_of_checkpoint(path).name == family


def test_a_single_file_of_no_known_family_is_refused(tmp_path, cache_dir):
    path = tmp_path / "other.safetensors"
    save_file({"encoder.layers.0.weight": torch.zeros(1)}, str(path))
    with pytest.raises(models.BaseModelError, match="unrecognised"):
        models.resolve(str(path), cache_dir)


def test_text_encoder_training_is_refused_outside_sd_before_any_step(cache_dir, crops, tmp_path):
    with pytest.raises(ValueError, match=r"Stable Diffusion 1\.x/2\.x base models only"):
        train_lora(
            config(train_text_encoder=True), pipe=pipe_for("sdxl", cache_dir),
            base_id=SPECS["sdxl"], images=crops, out_dir=tmp_path,
            should_stop=lambda: pytest.fail("refused only after training began"),
        )  # fmt: skip


def test_face_masks_weigh_the_face_box_and_its_mirror():
    masks = face_masks([(0.0, 0.0, 0.5, 0.5), None], (4, 4, 8, 8), config(face_weight=2.0))
    assert masks[0, 0, :4, :4].eq(3.0).all() and masks[0, 0, 4:, :].eq(1.0).all()
    assert masks[1, 0, :4, 4:].eq(3.0).all() and masks[1, 0, :4, :4].eq(1.0).all()  # mirrored
    assert masks[2:].eq(1.0).all()  # no box: even weights


@pytest.mark.parametrize("family", ["sdxl", "flux"])
def test_the_face_weighted_loss_trains_differently_from_the_plain_one(
    family, cache_dir, crops, tmp_path
):
    boxes = [(0.3, 0.2, 0.7, 0.7)] * len(crops)
    plain = train_lora(
        config(steps=3), pipe=pipe_for(family, cache_dir), base_id=SPECS[family],
        images=crops, out_dir=tmp_path / "plain", face_boxes=boxes,
    )  # fmt: skip
    weighted = train_lora(
        config(steps=3, face_weight=3.0), pipe=pipe_for(family, cache_dir), base_id=SPECS[family],
        images=crops, out_dir=tmp_path / "weighted", face_boxes=boxes,
    )  # fmt: skip
    assert plain.losses != weighted.losses
    assert json.loads(weighted.metadata["candor.config"])["face_weight"] == 3.0


def test_family_defaults_follow_the_model(cache_dir, tmp_path):
    assert models.resolve("builtin:tiny-flux", cache_dir).defaults.guidance == 3.5
    schnell = tmp_path / "schnell"
    shutil.copytree(cache_dir / "tiny-flux-v1", schnell)
    config_path = schnell / "transformer" / "config.json"
    config_path.write_text(
        json.dumps({**json.loads(config_path.read_text()), "guidance_embeds": False})
    )
    base = models.resolve(str(schnell), cache_dir)
    assert base.schnell and (base.defaults.generation_steps, base.defaults.guidance) == (4, 0.0)
    dev = models.resolve(str(cache_dir / "tiny-sdxl-v1"), cache_dir)
    assert (dev.defaults.resolution, dev.defaults.guidance) == (1024, 5.0)


def test_a_compiled_denoiser_swaps_creators_without_recompiling(cache_dir, loras):
    import numpy as np
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    compiled = PipelineCache(lambda: pipe_for("sd", cache_dir), compile=True, hotswap_rank=8)
    eager = PipelineCache(lambda: pipe_for("sd", cache_dir))
    first, second = (LoraRef(f"sd-{i}", str(p)) for i, p in enumerate(loras["sd"]))
    graphs = []
    for lora in (first, second, first):
        request = GenerationRequest(
            prompt="a photo", seed=3, steps=2, width=64, height=64, lora=lora
        )
        fast = np.asarray(compiled.generate(request)[0], dtype=np.int16)
        plain = np.asarray(eager.generate(request)[0], dtype=np.int16)
        assert np.abs(fast - plain).max() <= 2  # the same image, to compiler rounding
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] >= 1 and graphs == [graphs[0]] * 3  # swaps compiled nothing new
