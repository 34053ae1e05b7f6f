"""Privileged actions: help the simulator can give a learning policy and a real arm cannot,
whose strength a training curriculum anneals to none.

After Mao et al. 2025, "Learning Long-Horizon Robot Manipulation Skills via Privileged Action"
(arXiv 2502.15442): early in training the policy may act with privileges (relaxed constraints,
virtual forces on the objects) that make the long horizon explorable; the curriculum then takes
them away, so the policy that training ends with acts with what a real robot has. The privilege
here is the paper's virtual force, as an **assisted grasp**: while the tool centre point is within
``radius_m`` of the task's target cube, a spring-damper force pulls the cube to it and carries a
share of its weight, whatever the fingers do. At strength 1 a hand near the cube carries it (the
long horizon, carry and place, is explorable before grasping is learnt); at 0.5 half the pull and
half the weight, so the fingers must hold the rest; at 0 nothing (the env as it always was).

The force is recomputed at every physics substep (a force held over a 50 ms control step would
be an unstable spring), and only while it acts: an unassisted step is the plain ``mj_step``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.scene import Scene

GRAVITY_MPS2 = 9.81


@dataclass(frozen=True)
class GraspAssistConfig:
    """The virtual force's reach and stiffness, per unit of the cube's mass (so it holds whatever
    mass the randomiser drew)."""

    radius_m: float = 0.05          # TCP to cube centre: a cube between open fingers is within it
    frequency_hz: float = 4.0       # the spring's natural frequency at strength 1
    damping_ratio: float = 1.0
    max_accel_mps2: float = 30.0    # the pull's cap (the weight's share is on top of it)


class GraspAssist:
    """The assisted grasp of one env: ``strength`` in [0, 1], set by the trainer's curriculum."""

    def __init__(self, scene: Scene, config: GraspAssistConfig | None = None) -> None:
        self.scene, self.config = scene, config or GraspAssistConfig()
        self.strength = 0.0
        omega = 2 * np.pi * self.config.frequency_hz
        self._stiffness, self._damping = omega ** 2, 2 * self.config.damping_ratio * omega

    def acts(self, cube: str) -> bool:
        """Whether it helps this control step: some strength left and the cube within reach of the TCP."""
        return self.strength > 0.0 and self.scene.gripper_to_object_distance(cube) < self.config.radius_m

    def step(self, cube: str, n_substeps: int) -> None:
        """``n_substeps`` physics steps with the force on ``cube`` recomputed before each."""
        scene = self.scene
        model, data = scene.model, scene.data
        body = scene.body_id(cube)
        mass, dt = float(model.body_mass[body]), float(model.opt.timestep)
        previous = None
        for _ in range(n_substeps):
            error = scene.ee_pos() - data.xpos[body]
            rate = np.zeros(3) if previous is None else (error - previous) / dt  # relative velocity, TCP - cube
            previous = error
            pull = self._stiffness * error + self._damping * rate
            size = float(np.linalg.norm(pull))
            if size > self.config.max_accel_mps2:
                pull *= self.config.max_accel_mps2 / size
            if np.linalg.norm(error) < self.config.radius_m:
                data.xfrc_applied[body, :3] = self.strength * mass * (pull + [0.0, 0.0, GRAVITY_MPS2])
            else:  # the cube got away (knocked, or the hand left): no force at a distance
                data.xfrc_applied[body, :3] = 0.0
            mujoco.mj_step(model, data)
        data.xfrc_applied[body, :3] = 0.0
