"""The tabletop world: table, lights, the front camera, and the objects tasks place on it.

The table top is the plane z = 0 and the robot base sits on it at the origin, facing +x.
"""

from __future__ import annotations

from dm_control import mjcf

from robot_rl.contracts import COLORS

TABLE_TOP_Z_M = 0.0
CUBE_HALF_M = 0.02


def make_arena(timestep_s: float = 0.002) -> mjcf.RootElement:
    """An empty tabletop scene with lights and a front camera looking at the workspace."""
    arena = mjcf.RootElement(model="tabletop")
    arena.option.timestep = timestep_s
    arena.option.integrator = "implicitfast"
    arena.option.cone = "elliptic"
    arena.option.impratio = 10
    arena.visual.headlight.ambient = [0.35, 0.35, 0.35]
    arena.visual.headlight.diffuse = [0.4, 0.4, 0.4]
    arena.visual.quality.shadowsize = 2048
    arena.asset.add("texture", name="skybox", type="skybox", builtin="gradient",
                    rgb1=[0.6, 0.7, 0.8], rgb2=[0.1, 0.1, 0.15], width=64, height=64)
    arena.asset.add("texture", name="grid", type="2d", builtin="checker",
                    rgb1=[0.55, 0.45, 0.35], rgb2=[0.5, 0.4, 0.3], width=256, height=256)
    arena.asset.add("material", name="table", texture="grid", texrepeat=[6, 6], reflectance=0.1)
    arena.asset.add("material", name="floor", rgba=[0.3, 0.32, 0.35, 1], reflectance=0.2)
    world = arena.worldbody
    world.add("light", name="key", pos=[0.8, -0.6, 2.0], dir=[-0.3, 0.3, -1.0], diffuse=[0.6, 0.6, 0.6],
              castshadow=True)
    world.add("light", name="fill", pos=[0.3, 0.8, 1.5], dir=[0, -0.5, -1], diffuse=[0.3, 0.3, 0.3],
              castshadow=False)
    world.add("geom", name="floor", type="plane", size=[3, 3, 0.1], pos=[0, 0, -0.75], material="floor")
    world.add("geom", name="table", type="box", size=[0.75, 0.7, 0.375], pos=[0.35, 0, -0.375],
              material="table", friction=[1.0, 0.005, 0.0001])
    world.add("camera", name="front", pos=[1.3, 0.0, 0.8], xyaxes=[0, 1, 0, -0.55, 0, 0.9], fovy=52)
    return arena


def add_cube(arena: mjcf.RootElement, name: str, color: str, half_m: float = CUBE_HALF_M,
             mass_kg: float = 0.05) -> None:
    """A free cube of a named colour (a name of ``robot_rl.contracts.COLORS``)."""
    body = arena.worldbody.add("body", name=name, pos=[0.5, 0, half_m])
    body.add("freejoint", name=f"{name}_joint")
    body.add("geom", name=f"{name}_geom", type="box", size=[half_m] * 3, rgba=list(COLORS[color]),
             mass=mass_kg, friction=[1.2, 0.01, 0.001], condim=4)


def add_bowl(arena: mjcf.RootElement, name: str = "bowl", radius_m: float = 0.07,
             height_m: float = 0.04, rgba=(0.9, 0.9, 0.92, 1.0)) -> None:
    """A shallow square bowl on a mocap body, so resets move it without a free joint."""
    body = arena.worldbody.add("body", name=name, mocap=True, pos=[0.5, 0.2, 0])
    wall = 0.006
    body.add("geom", name=f"{name}_base", type="box", size=[radius_m, radius_m, 0.003],
             pos=[0, 0, 0.003], rgba=list(rgba))
    for i, (x, y, sx, sy) in enumerate([(radius_m, 0, wall, radius_m), (-radius_m, 0, wall, radius_m),
                                        (0, radius_m, radius_m, wall), (0, -radius_m, radius_m, wall)]):
        body.add("geom", name=f"{name}_wall{i}", type="box", size=[sx, sy, height_m / 2],
                 pos=[x, y, height_m / 2], rgba=list(rgba))


def add_marker(arena: mjcf.RootElement, name: str, radius_m: float = 0.04,
               rgba=(1.0, 1.0, 1.0, 0.6)) -> None:
    """A flat, non-colliding goal disc on a mocap body."""
    body = arena.worldbody.add("body", name=name, mocap=True, pos=[0.5, 0, 0])
    body.add("geom", name=f"{name}_geom", type="cylinder", size=[radius_m, 0.001], pos=[0, 0, 0.001],
             rgba=list(rgba), contype=0, conaffinity=0)
