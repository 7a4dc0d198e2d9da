"""The live consent check alone (creator.engine.liveness): real dlib models, frames from
tests/videos.py. No database."""

import itertools
import json
import random

import pytest
from PIL import Image

from creator.engine import liveness
from creator.engine.faces import FaceEngine
from tests import images, videos

THRESHOLD = 0.6  # FACE_MATCH_THRESHOLD's default
ASKED = ("left", "right", "mouth")


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine.get()


@pytest.fixture(scope="module")
def references(engine) -> dict[str, tuple[float, ...]]:
    """Reference photos of the astronaut, as photo intake embedded them."""
    return {f"photo{i}": engine.analyse(images.astronaut_variant(i)).face.embedding for i in (0, 3)}


@pytest.fixture(scope="module")
def genuine() -> list[Image.Image]:
    return videos.challenge_burst(ASKED)


def check(frames, steps, references, engine) -> liveness.LivenessResult:
    return liveness.check_burst(
        frames, steps, references=references, threshold=THRESHOLD, engine=engine
    )


def fixture_frame(name: str) -> Image.Image:
    """A fixture photo as a camera frame: only resized to 640 px wide, never altered."""
    image = Image.open(images.FACES / name).convert("RGB")
    return image.resize((640, round(image.height * 640 / image.width)), Image.Resampling.LANCZOS)


@pytest.mark.parametrize("steps", list(itertools.permutations(ASKED)))
def test_it_accepts_the_moves_in_the_order_asked(steps, references, engine):
    result = check(videos.challenge_burst(steps), steps, references, engine)

    assert result.passed, result
    assert result.problem == ""
    assert result.strangers == []
    assert set(result.distances) == set(references)
    assert max(result.distances.values()) < THRESHOLD
    assert len(result.embedding) == 128
    firsts = [result.evidence["first"][step] for step in steps]
    assert firsts == sorted(firsts)


def test_it_refuses_the_moves_in_another_order(genuine, references, engine):
    result = check(genuine, ("right", "left", "mouth"), references, engine)

    assert not result.passed
    assert result.problem == "order"
    assert (result.step, result.frame) == ("left", 4)  # left came first, in frame 4


def test_it_refuses_frames_sent_out_of_order(genuine, references, engine):
    shuffled = genuine[:]
    random.Random(1).shuffle(shuffled)

    result = check(shuffled, ASKED, references, engine)

    assert result.problem == "not_right"


def test_it_refuses_the_burst_played_backwards(genuine, references, engine):
    result = check(genuine[::-1], ASKED, references, engine)

    assert result.problem == "not_mouth"  # the open mouth became the resting pose


def test_it_refuses_a_photo_held_still(references, engine):
    result = check(videos.still_burst(), ASKED, references, engine)

    assert result.problem == "still"
    assert result.evidence["motion"]["pixels"] > liveness.PIXEL_FLOOR  # noise and hand shake
    assert result.evidence["motion"]["pose"] < liveness.STILL_SHARE


def test_it_refuses_one_frame_sent_twelve_times(genuine, references, engine):
    result = check([genuine[0]] * 12, ASKED, references, engine)

    assert result.problem == "still"
    assert result.evidence["motion"]["pixels"] == 0


def test_a_tilted_print_is_not_a_head_turn(references, engine):
    result = check(videos.tilted_print_burst(ASKED), ASKED, references, engine)

    assert result.problem == "not_left"
    assert result.step == "left"
    assert max(abs(v) for v in result.evidence["yaw"]) < liveness.YAW_TURN
    assert result.evidence["motion"]["pose"] > liveness.STILL_SHARE  # it did move


def test_it_refuses_a_missing_mouth_step(references, engine):
    frames = videos.burst(videos.schedule(("left", "right", "neutral")))

    result = check(frames, ASKED, references, engine)

    assert result.problem == "not_mouth"
    assert result.step == "mouth"
    assert result.evidence["first"]["mouth"] is None


def test_it_refuses_someone_other_than_the_reference_photos(references, engine):
    biden = fixture_frame("biden.jpg")

    result = check([biden] * 12, ASKED, references, engine)

    assert result.problem == "not_reference"
    assert result.strangers == sorted(references)
    assert min(result.distances.values()) > THRESHOLD


def test_it_names_the_frame_with_two_faces(genuine, references, engine):
    frames = genuine[:]
    frames[4] = fixture_frame("two_faces_composite.jpg")

    result = check(frames, ASKED, references, engine)

    assert (result.problem, result.frame) == ("several_faces", 5)


def test_it_names_the_frame_without_a_face(genuine, references, engine):
    frames = genuine[:]
    frames[6] = fixture_frame("skimage_coffee.png")

    result = check(frames, ASKED, references, engine)

    assert (result.problem, result.frame) == ("no_face", 7)


def test_it_needs_enough_frames(genuine, references, engine):
    result = check(genuine[: liveness.MIN_FRAMES - 1], ASKED, references, engine)

    assert result.problem == "too_few_frames"


def test_its_evidence_is_scores_only(genuine, references, engine):
    result = check(genuine, ASKED, references, engine)

    text = json.dumps(result.evidence, allow_nan=False)
    assert len(text) < 2000  # numbers, not pixels
    assert set(result.evidence) >= {"faces", "score", "yaw", "mouth", "first", "motion"}
    assert len(result.evidence["yaw"]) == len(genuine)
    json.dumps(result.distances, allow_nan=False)


def test_random_steps_are_a_permutation_of_all_steps():
    drawn = {liveness.random_steps() for _ in range(200)}

    assert all(sorted(steps) == sorted(liveness.STEPS) for steps in drawn)
    assert len(drawn) == 6


def test_the_challenge_video_is_a_y4m_clip(tmp_path):
    path = videos.challenge_video(ASKED, tmp_path / "challenge.y4m", fps=5)

    data = path.read_bytes()
    header, _, _ = data.partition(b"\n")
    assert header == b"YUV4MPEG2 W640 H480 F5:1 Ip A1:1 C420jpeg"
    frame_size = len(b"FRAME\n") + 640 * 480 * 3 // 2
    assert (len(data) - len(header) - 1) / frame_size == 7 + 3 * 8 + 15  # 1.4 s, 3 × 1.6 s, 3 s
