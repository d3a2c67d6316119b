"""Rendering: geometry, culling, occlusion ground truth, orientation and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from roadthink.render import (
    draw_annotations,
    montage,
    render_bev,
    render_camera,
    render_scene,
    save_png,
)
from roadthink.render.details import BACK, FRONT, LEFT, RIGHT, TEMPLATES, TOP
from roadthink.render.projection import (
    NEAR,
    Camera,
    box_corners_batch,
    box_faces_batch,
    clip_near,
    clip_polygons_near,
    front_facing,
)
from roadthink.render.style import HEADING_COLORS, SKIN, lighting
from roadthink.scene.cameras import rig
from roadthink.scene.types import (
    Agent,
    Area,
    AreaKind,
    BEVSpec,
    Box3D,
    Category,
    Color,
    Crosswalk,
    Ego,
    Environment,
    Intent,
    LightState,
    MapData,
    Marking,
    MarkingKind,
    Pose,
    Scene,
    Sign,
    SignKind,
    StopLine,
    TimeOfDay,
    TrafficLight,
    Weather,
)

POSE = Pose(x=120.0, y=-40.0, yaw=0.4)  # not the origin, so world -> ego is exercised
BEV = BEVSpec(width=200, height=200, resolution=0.25)
SIZES = {
    Category.CAR: (4.5, 1.9, 1.5),
    Category.TRUCK: (8.0, 2.5, 3.3),
    Category.BUS: (11.0, 2.6, 3.2),
    Category.PEDESTRIAN: (0.55, 0.6, 1.75),
    Category.TRAFFIC_CONE: (2.0, 2.0, 0.8),
}


def world(x: float, y: float) -> tuple[float, float]:
    """An ego-frame ground point in the world frame of ``POSE``."""
    c, s = math.cos(POSE.yaw), math.sin(POSE.yaw)
    return (POSE.x + c * x - s * y, POSE.y + s * x + c * y)


def agent(
    agent_id: str,
    x: float,
    y: float,
    category: Category = Category.CAR,
    yaw: float = 0.0,
    rgb: tuple[int, int, int] = (200, 40, 40),
) -> Agent:
    length, width, height = SIZES[category]
    return Agent(
        id=agent_id,
        category=category,
        box=Box3D(center=(x, y, height / 2), size=(length, width, height), yaw=yaw),
        velocity=(0.0, 0.0),
        accel=0.0,
        color=Color(name="test", rgb=rgb),
        intent=Intent.GOING_STRAIGHT,
        past=[],
        future=[],
    )


def light(x: float, y: float, state: LightState, yaw: float = math.pi) -> TrafficLight:
    """A signal head 4 m up at ego (x, y), facing ego-frame ``yaw`` (default: the ego)."""
    return TrafficLight(
        id=f"light-{x}-{y}",
        position=(*world(x, y), 4.0),
        yaw=yaw + POSE.yaw,
        state=state,
        time_to_change=5.0,
        lane_ids=[],
    )


def road_map(lights: list[TrafficLight] | None = None, signs: list[Sign] | None = None) -> MapData:
    """A straight two-way road along the ego's heading: two lanes each way, sidewalks."""

    def strip(y0: float, y1: float) -> list[tuple[float, float]]:
        return [world(-60, y0), world(90, y0), world(90, y1), world(-60, y1)]

    def line(y: float) -> list[tuple[float, float]]:
        return [world(-60, y), world(90, y)]

    return MapData(
        lanes=[],
        markings=[
            Marking(kind=MarkingKind.DOUBLE_YELLOW, points=line(1.75)),
            Marking(kind=MarkingKind.DASHED_WHITE, points=line(-1.75)),
            Marking(kind=MarkingKind.DASHED_WHITE, points=line(5.25)),
            Marking(kind=MarkingKind.SOLID_WHITE, points=line(-5.25)),
            Marking(kind=MarkingKind.SOLID_WHITE, points=line(8.75)),
        ],
        crosswalks=[
            Crosswalk(
                id="cw",
                polygon=[world(40, -5.25), world(43, -5.25), world(43, 8.75), world(40, 8.75)],
            )
        ],
        stop_lines=[StopLine(id="stop", points=(world(38, -5.25), world(38, 1.75)), lane_ids=[])],
        areas=[
            Area(kind=AreaKind.ROAD, polygon=strip(-5.25, 8.75)),
            Area(kind=AreaKind.SIDEWALK, polygon=strip(-8.25, -5.25)),
            Area(kind=AreaKind.SIDEWALK, polygon=strip(8.75, 11.75)),
        ],
        lights=lights or [],
        signs=signs or [],
    )


def make_scene(
    agents: list[Agent] | None = None,
    lights: list[TrafficLight] | None = None,
    signs: list[Sign] | None = None,
    weather: Weather = Weather.CLEAR,
    time_of_day: TimeOfDay = TimeOfDay.DAY,
) -> Scene:
    return Scene(
        schema_version="1.0",
        scene_id="test",
        seed=0,
        generator_version="test",
        layout="straight",
        scenario="test",
        environment=Environment(weather=weather, time_of_day=time_of_day),
        ego=Ego(
            pose=POSE,
            size=(4.6, 1.9, 1.6),
            speed=10.0,
            accel=0.0,
            yaw_rate=0.0,
            lane_id=None,
            intent=Intent.GOING_STRAIGHT,
            past=[],
            future=[],
        ),
        agents=agents or [],
        map=road_map(lights, signs),
        cameras=rig(["CAM_FRONT", "CAM_BACK"]),
        bev=BEV,
    )


def front() -> Camera:
    return Camera.from_spec(rig(["CAM_FRONT"])["CAM_FRONT"])


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 2) (u, v) of the pixels where two images differ."""
    v, u = np.nonzero((a != b).any(axis=2))
    return np.stack([u, v], axis=1)


# --- projection ------------------------------------------------------------------------------


def test_points_on_and_off_the_optical_axis_project_where_the_pinhole_says():
    camera = front()  # mounted at ego (1.7, 0, 1.5), looking forward
    focal, cx, cy = camera.focal, camera.width / 2, camera.height / 2
    ahead = camera.to_camera(np.array([[11.7, 0.0, 1.5], [11.7, 1.0, 1.5], [11.7, 0.0, 0.5]]))
    np.testing.assert_allclose(ahead[0], [0.0, 0.0, 10.0], atol=1e-6)
    np.testing.assert_allclose(ahead[1], [-1.0, 0.0, 10.0], atol=1e-6)  # left is -x_cam
    pixels = camera.project(ahead)
    np.testing.assert_allclose(pixels[0], [cx, cy], atol=1e-6)
    np.testing.assert_allclose(pixels[1], [cx - focal / 10, cy], atol=1e-6)
    np.testing.assert_allclose(pixels[2], [cx, cy + focal / 10], atol=1e-6)  # lower is down


def test_ground_homography_matches_the_full_transform_chain():
    camera = front()
    pose = Pose(x=3.0, y=-2.0, yaw=0.7)
    ego_points = np.array([[10.0, 2.0], [25.0, -4.0], [6.0, 0.5]])
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    world_points = ego_points @ np.array([[c, s], [-s, c]]) + (pose.x, pose.y)
    homogeneous = world_points @ camera.ground_homography(pose)[:, :2].T
    homogeneous += camera.ground_homography(pose)[:, 2]
    on_ground = np.concatenate([ego_points, np.zeros((3, 1))], axis=1)
    expected = camera.project(camera.to_camera(on_ground))
    np.testing.assert_allclose(homogeneous[:, :2] / homogeneous[:, 2:], expected, atol=1e-9)


def test_near_clipping_keeps_the_part_in_front_and_drops_what_is_behind():
    square = np.array([[-1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, 2.0], [-1.0, 0.0, 2.0]])
    ahead, behind = square + np.array([0.0, 0.0, 5.0]), square - np.array([0.0, 0.0, 5.0])
    clipped = clip_near(square)
    assert (clipped[:, 2] >= NEAR - 1e-12).all()
    x, z = clipped[:, 0], clipped[:, 2]
    area = 0.5 * abs(np.dot(x, np.roll(z, -1)) - np.dot(z, np.roll(x, -1)))
    assert area == pytest.approx(2.0 * (2.0 - NEAR))
    assert len(clip_near(behind)) == 0
    np.testing.assert_array_equal(clip_near(ahead), ahead)
    points, owner = clip_polygons_near(np.concatenate([behind, square]), np.repeat([0, 1], 4))
    assert set(owner.tolist()) == {1}
    np.testing.assert_allclose(points, clipped)


def test_batched_boxes_match_box3d_and_back_faces_are_culled():
    box = Box3D(center=(1.0, 2.0, 0.75), size=(4.0, 2.0, 1.5), yaw=0.7)
    arrays = np.array([box.center]), np.array([box.size]), np.array([box.yaw])
    np.testing.assert_allclose(box_corners_batch(*arrays)[0], box.corners())
    upright = np.array([[0.0, 0.0, 0.75]]), np.array([[4.0, 2.0, 1.5]]), np.array([0.0])
    normals, middles = box_faces_batch(*upright)
    eye = np.array([-10.0, 0.0, 5.0])  # behind and above: sees the back and the top
    # Faces in BOX_FACES order: bottom, top, front, back, left, right.
    expected = [False, True, False, True, False, False]
    assert front_facing(normals, middles, eye)[0].tolist() == expected


# --- camera -----------------------------------------------------------------------------------


def test_a_box_behind_the_camera_is_never_drawn_and_one_cut_by_it_is_clipped():
    empty = render_camera(make_scene(), "CAM_FRONT")
    behind = render_camera(make_scene([agent("b", -8.0, 0.0, Category.BUS)]), "CAM_FRONT")
    np.testing.assert_array_equal(behind.image, empty.image)
    assert behind.annotations == {}
    # Corners from x = 0.25 to 4.75 in the ego frame, the camera sits at x = 1.7: cut in two.
    beside = render_camera(make_scene([agent("c", 2.5, 3.0)]), "CAM_FRONT")
    annotation = beside.annotations["c"]
    x1, y1, x2, y2 = annotation.bbox
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360
    # Its near-plane cut projects far off-image, so very little of the silhouette is seen.
    assert annotation.visible_fraction < 0.5


def test_an_occluded_agent_is_partly_visible_and_the_occluder_wholly():
    scene = make_scene(
        [
            agent("bus", 12.0, 0.0, Category.BUS),
            agent("peeking", 30.0, 7.7),
            agent("hidden", 30.0, 0.0),
        ]
    )
    annotations = render_camera(scene, "CAM_FRONT").annotations
    assert annotations["bus"].visible_fraction > 0.97
    assert 0.2 < annotations["peeking"].visible_fraction < 0.8
    assert "hidden" not in annotations


def test_a_sign_pole_occludes_an_agent_behind_it():
    plain = render_camera(make_scene([agent("a", 20.0, 0.0)]), "CAM_FRONT").annotations["a"]
    sign = Sign(
        id="s",
        kind=SignKind.STOP,
        position=(*world(6.0, 0.0), 2.2),
        yaw=POSE.yaw + math.pi,
        lane_ids=[],
    )
    scene = make_scene([agent("a", 20.0, 0.0)], signs=[sign])
    behind = render_camera(scene, "CAM_FRONT").annotations["a"]
    assert plain.visible_fraction > 0.95
    assert 0.5 < behind.visible_fraction < plain.visible_fraction - 0.05
    assert behind.bbox == plain.bbox


def test_an_agent_half_outside_the_image_has_a_clipped_box():
    rendered = render_camera(make_scene([agent("edge", 12.0, 5.6)]), "CAM_FRONT")
    annotation = rendered.annotations["edge"]
    assert annotation.bbox[0] == 0.0
    assert 0.2 < annotation.visible_fraction < 0.8
    assert annotation.depth == pytest.approx(12.0 - 1.7, abs=1e-3)


def test_the_bbox_bounds_the_drawn_pixels_of_a_fully_visible_agent():
    empty = render_camera(make_scene(), "CAM_FRONT").image
    rendered = render_camera(make_scene([agent("a", 15.0, -2.0)]), "CAM_FRONT")
    pixels = changed(rendered.image, empty)
    x1, y1, x2, y2 = rendered.annotations["a"].bbox
    assert x1 - 1 <= pixels[:, 0].min() and pixels[:, 0].max() <= x2 + 1
    assert y1 - 1 <= pixels[:, 1].min() and pixels[:, 1].max() <= y2 + 1
    assert rendered.annotations["a"].visible_fraction > 0.95


def test_box_faces_are_the_ones_facing_the_camera_not_inside_out():
    """A low box ahead shows its rear face (normal -x) and its top; drawn inside out it
    would show its front and bottom, which are shaded differently."""
    rgb = (180, 120, 60)
    low_box = agent("low", 8.0, 0.0, Category.TRAFFIC_CONE, rgb=rgb)  # 2 x 2 x 0.8 m
    rendered = render_camera(make_scene([low_box]), "CAM_FRONT")
    shade = lighting(make_scene().environment).shade
    rear = np.round(shade(np.array(rgb, float), np.array([-1.0, 0.0, 0.0]), np.array(0.0)))
    top = np.round(shade(np.array(rgb, float), np.array([0.0, 0.0, 1.0]), np.array(0.0)))
    assert not np.allclose(rear, top, atol=2)
    # Rear face at z_cam = 8 - 1 - 1.7 = 5.3: rows 180 + f * 0.7 / 5.3 to 180 + f * 1.5 / 5.3.
    np.testing.assert_allclose(rendered.image[275, 320], rear, atol=1)
    # Top face: between the rear top edge (row ~240) and the front top edge (row ~224).
    np.testing.assert_allclose(rendered.image[232, 320], top, atol=1)


def test_the_red_lamp_is_lit_at_the_top_of_its_housing():
    for state, expect_above in ((LightState.RED, True), (LightState.GREEN, False)):
        image = render_camera(make_scene(lights=[light(20.0, -3.0, state)]), "CAM_FRONT").image
        center_v = front().project(front().to_camera(np.array([20.0, -3.0, 4.0])))[1]
        r, g, b = (image[..., i].astype(int) for i in range(3))
        red, green = (r > 200) & (g < 100) & (b < 100), (g > 200) & (r < 100)
        lit = red if state == LightState.RED else green
        rows = np.nonzero(lit)[0]
        assert len(rows) > 0
        assert (rows.mean() < center_v - 3) == expect_above
        assert (rows.mean() > center_v + 3) == (not expect_above)


def test_every_weather_and_time_of_day_renders_and_night_is_darker():
    means = {}
    for weather in Weather:
        for time_of_day in TimeOfDay:
            scene = make_scene([agent("a", 15.0, 0.0)], weather=weather, time_of_day=time_of_day)
            image = render_camera(scene, "CAM_FRONT").image
            assert image.shape == (360, 640, 3) and image.dtype == np.uint8
            means[weather, time_of_day] = image.mean()
    assert means[Weather.CLEAR, TimeOfDay.NIGHT] < means[Weather.CLEAR, TimeOfDay.DUSK]
    assert means[Weather.CLEAR, TimeOfDay.DUSK] < means[Weather.CLEAR, TimeOfDay.DAY]


# --- category details ---------------------------------------------------------------------------

SILVER = (170, 172, 178)
BLUE = (35, 70, 170)


def in_box(image: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """The pixels of ``image`` inside a 2D box, as signed ints (so differences do not wrap)."""
    x1, y1, x2, y2 = (round(v) for v in bbox)
    return image[y1:y2, x1:x2].astype(int)


def test_every_category_has_details_that_are_convex_and_on_their_faces():
    assert set(TEMPLATES) == set(Category)
    axis = {TOP: 2, FRONT: 0, BACK: 0, LEFT: 1, RIGHT: 1}
    side = {TOP: 1, FRONT: 1, BACK: -1, LEFT: 1, RIGHT: -1}
    for template in TEMPLATES.values():
        for face, points in zip(template.face.tolist(), template.points, strict=True):
            assert (points[:, axis[face]] == side[face]).all()  # on the face's plane
            assert (np.abs(points) <= 1).all()  # within the face
            outline = np.delete(points, axis[face], axis=1)
            edges = np.roll(outline, -1, axis=0) - outline
            turns = edges[:, 0] * np.roll(edges[:, 1], -1) - edges[:, 1] * np.roll(edges[:, 0], -1)
            assert (turns >= -1e-12).all() or (turns <= 1e-12).all()  # convex (padding adds zeros)


def test_a_car_shows_red_tail_lights_from_behind_and_headlights_from_the_front():
    for yaw, rear in ((0.0, True), (math.pi, False)):
        rendered = render_camera(make_scene([agent("a", 15.0, 0.0, yaw=yaw, rgb=BLUE)]), "CAM_FRONT")
        pixels = in_box(rendered.image, rendered.annotations["a"].bbox)
        r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        red = (r > 150) & (g < 60) & (b < 60)
        pale = pixels.min(axis=2) > 150
        assert (np.count_nonzero(red) > 10) == rear
        assert (np.count_nonzero(pale) > 10) == (not rear)


def test_a_pedestrian_shows_a_skin_toned_head_above_its_clothes_and_darker_legs():
    rendered = render_camera(make_scene([agent("p", 6.0, 0.0, Category.PEDESTRIAN, rgb=BLUE)]), "CAM_FRONT")
    x1, y1, x2, y2 = (round(v) for v in rendered.annotations["p"].bbox)
    column = rendered.image[y1:y2, (x1 + x2) // 2].astype(int)  # top to bottom
    shade = lighting(make_scene().environment).shade
    rows = np.arange(len(column)) / len(column)
    rear = np.array([-1.0, 0.0, 0.0])  # the face the camera sees
    skin_rgb, clothes_rgb = (shade(np.array(rgb, float), rear, np.array(0.0)) for rgb in (SKIN, BLUE))
    skin = (np.abs(column - skin_rgb) <= 1).all(axis=1)
    clothes = (np.abs(column - clothes_rgb) <= 1).all(axis=1)
    legs = column.sum(axis=1) < 0.6 * clothes_rgb.sum()
    assert skin.any() and clothes.any() and legs.any()
    assert rows[skin].max() < rows[clothes].min()  # the head is above the clothes ...
    assert rows[skin].min() < 0.05 and rows[skin].max() > 0.1  # ... on top of them ...
    assert rows[clothes].max() < rows[legs].min() < 0.6  # ... and the legs below them


def test_at_night_headlights_and_tail_lights_are_lit():
    for yaw in (0.0, math.pi):
        scene = make_scene([agent("a", 15.0, 0.0, yaw=yaw, rgb=SILVER)], time_of_day=TimeOfDay.NIGHT)
        rendered = render_camera(scene, "CAM_FRONT")
        pixels = in_box(rendered.image, rendered.annotations["a"].bbox)
        body = np.median(pixels.reshape(-1, 3), axis=0)
        brightest = pixels.max(axis=2)
        assert brightest.max() > 220  # lamps emit: no night tint
        assert body.max() < 110  # the silver body is dark at night
        assert np.count_nonzero(brightest > body.max() + 100) > 10


def scenes_by_category(categories: list[Category]) -> list[Scene]:
    """A scene of varied boxes (near, far, turned, overlapping, one cut by the near plane), once
    per category: the boxes stay, only what is painted on them changes."""
    boxes = [
        agent("near", 7.0, -1.0, Category.PEDESTRIAN),
        agent("behind", 14.0, -1.5, yaw=0.3),
        agent("oncoming", 22.0, 3.5, Category.TRUCK, yaw=math.pi),
        agent("turned", 11.0, 4.0, yaw=1.2),
        agent("far", 60.0, -2.0, Category.BUS, yaw=-0.2),
        agent("cut", 2.5, 3.0),
    ]
    return [make_scene([a.model_copy(update={"category": category}) for a in boxes]) for category in categories]


def test_details_stay_inside_their_agents_and_change_no_ground_truth():
    """Whatever is painted on a box, it covers the same pixels (details never stray off their
    faces, even where OpenCV's rasteriser would) and gives the same annotations."""
    empty = render_camera(make_scene(), "CAM_FRONT").image
    renders = [render_camera(scene, "CAM_FRONT") for scene in scenes_by_category(list(Category))]
    covered = [(r.image != empty).any(axis=2) for r in renders]
    for rendered, mask in zip(renders[1:], covered[1:], strict=True):
        assert rendered.annotations == renders[0].annotations
        np.testing.assert_array_equal(mask, covered[0])
        assert (rendered.image != renders[0].image).any()  # yet the details differ


def test_a_farther_agents_details_never_paint_over_a_nearer_agent():
    bus = agent("bus", 10.0, 1.5, Category.BUS, rgb=SILVER)
    alone = render_camera(make_scene([bus]), "CAM_FRONT").image
    bus_pixels = (alone != render_camera(make_scene(), "CAM_FRONT").image).any(axis=2)
    images = []
    for category in (Category.CAR, Category.TRUCK, Category.PEDESTRIAN):
        hidden = agent("hidden", 25.0, 0.0).model_copy(update={"category": category})
        rendered = render_camera(make_scene([bus, hidden]), "CAM_FRONT")
        assert 0.1 < rendered.annotations["hidden"].visible_fraction < 0.9
        np.testing.assert_array_equal(rendered.image[bus_pixels], alone[bus_pixels])
        images.append(rendered.image)
    assert (images[0] != images[1]).any() and (images[1] != images[2]).any()


# --- orientation, shared by the BEV and the camera --------------------------------------------


@pytest.mark.parametrize("side", [4.0, -4.0])
def test_left_in_the_ego_frame_is_left_in_the_bev_and_the_front_camera(side):
    scene, empty = make_scene([agent("a", 15.0, side)]), make_scene()
    bev = changed(render_bev(scene), render_bev(empty))
    center = (BEV.width / 2 - side / BEV.resolution, BEV.height / 2 - 15.0 / BEV.resolution)
    np.testing.assert_allclose(bev.mean(axis=0), center, atol=1.0)
    front_images = (render_camera(s, "CAM_FRONT").image for s in (scene, empty))
    camera = changed(*front_images)
    on_left = side > 0
    assert (bev[:, 0] < BEV.width / 2).all() == on_left
    assert (camera[:, 0] < 320).all() == on_left


@pytest.mark.parametrize(
    ("yaw", "axis", "sign"),
    [(0.0, 1, -1), (math.pi / 2, 0, -1), (-math.pi / 2, 0, 1)],
)
def test_the_bev_heading_mark_points_where_the_yaw_points(yaw, axis, sign):
    """yaw 0 points ahead (up), +pi/2 to the left (image left), -pi/2 to the right: the mark
    sits in the front half of the box and tapers towards the front (a triangle has a quarter
    of its area in the half of its length nearer the tip)."""
    image = render_bev(make_scene([agent("a", 10.0, 0.0, yaw=yaw)]))
    v, u = np.nonzero((image == HEADING_COLORS[Category.CAR]).all(axis=2))
    ahead = sign * np.stack([u, v], axis=1)[:, axis]  # grows in the heading direction
    center = np.array([BEV.width / 2, BEV.height / 2 - 10.0 / BEV.resolution])
    assert ahead.mean() - sign * center[axis] > 3
    tip_half = ahead > (ahead.min() + ahead.max()) / 2
    assert tip_half.mean() < 0.4


# --- scenes, files, overlays -------------------------------------------------------------------


def full_scene() -> Scene:
    return make_scene(
        [
            agent("a", 15.0, 0.0),
            agent("b", 25.0, 3.5, yaw=math.pi),
            agent("c", 9.0, -3.5, Category.BUS),
        ],
        lights=[light(36.0, -6.0, LightState.YELLOW)],
        signs=[
            Sign(
                id="s",
                kind=SignKind.SPEED_LIMIT,
                value=50,
                position=(*world(12.0, -7.0), 2.2),
                yaw=POSE.yaw + math.pi,
                lane_ids=[],
            ),
            Sign(
                id="t",
                kind=SignKind.STOP,
                position=(*world(30.0, -7.0), 2.0),
                yaw=POSE.yaw + math.pi,
                lane_ids=[],
            ),
        ],
    )


def test_render_scene_is_deterministic_and_leaves_its_input_alone(tmp_path):
    scene = full_scene()
    first, second = render_scene(scene), render_scene(scene)
    assert list(first.images) == ["BEV", "CAM_FRONT", "CAM_BACK"]
    for name, image in first.images.items():
        np.testing.assert_array_equal(image, second.images[name])
    assert all(a.cameras == {} for a in scene.agents)
    assert set(first.scene.agent("a").cameras) == {"CAM_FRONT"}
    assert first.scene == second.scene
    save_png(tmp_path / "one.png", first.images["CAM_FRONT"])
    save_png(tmp_path / "two.png", second.images["CAM_FRONT"])
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "two.png").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png", "two.png"]  # no temporaries


def test_overlays_and_montage_draw_on_copies():
    rendered = render_scene(full_scene())
    image = rendered.images["CAM_FRONT"]
    boxed = draw_annotations(image, rendered.scene, "CAM_FRONT")
    assert boxed.shape == image.shape and (boxed != image).any()
    unannotated = draw_annotations(image, full_scene(), "CAM_FRONT")  # no ground truth yet
    np.testing.assert_array_equal(unannotated, image)
    sheet = montage(rendered.images)
    assert sheet.ndim == 3 and sheet.shape[0] >= BEV.height and sheet.dtype == np.uint8
