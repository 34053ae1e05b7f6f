"""The ``ray:`` settings every verb shares, and the Ray instance a command runs on.

Without ``ray.address`` a command starts a local Ray instance and shuts it down when it ends;
``ray.address=auto`` joins the cluster this machine is a node of (``ray start --head`` /
``ray start --address=HEAD:6379``) and ``ray.address=HOST:PORT`` a given one. Joining leaves
the cluster running. Nothing here runs unless a command asks for Ray (``ray.actors``, a sweep
with ``ray.address``), so Ray stays an optional dependency of the single-process trainer.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterator

from robot_rl.config import ConfigError

log = logging.getLogger(__name__)

ADDRESS_PATTERN = r"auto|local|(ray://)?[\w.\-]+:\d+"


@dataclass
class RayConfig:
    """``ray.*`` (robot_rl/conf/config.yaml)."""

    actors: int = 0  # > 0: actor/learner training (train) or parallel scoring (reward label)
    address: str | None = None  # None or local: a local instance; auto | HOST:PORT: join a cluster
    chunk_steps: int = 50  # env steps an actor sends per message
    publish_every: int = 50  # learner updates between weight publishes
    actor_timeout_s: float = 60.0  # an actor silent this long is killed and restarted
    actor_startup_s: float = 180.0  # ... and one that has not built its env (and reward model) in this long
    actor_cpus: float = 1.0  # resources one actor (or one sweep job: job_cpus) declares
    job_cpus: float = 1.0
    job_gpus: float = 0.0  # a fraction shares a GPU between sweep jobs
    learner_cpus: float = 1.0  # env=ros with ray.address: the robot run's learner (distributed.robot_learner)
    learner_gpus: float | None = None  # None: one when the cluster has a GPU
    learner_resource: str | None = None  # a custom resource the learner needs (pins it to the node offering it)
    num_cpus: int | None = None  # local instance only: CPUs it offers (default: this machine's)
    dashboard: bool = False

    @property
    def local(self) -> bool:
        return self.address in (None, "local")


def ray_config(group: Any) -> RayConfig:
    """The checked ``ray:`` group (one sentence naming the key when a value is wrong)."""
    from omegaconf import DictConfig, OmegaConf

    from robot_rl.schema import as_bool, as_float, as_int, build

    values = OmegaConf.to_container(group, resolve=True) if isinstance(group, DictConfig) else dict(group or {})
    config = build(RayConfig, values, "ray")
    as_int("ray.actors", config.actors, minimum=0, maximum=256)
    as_int("ray.chunk_steps", config.chunk_steps, minimum=1)
    as_int("ray.publish_every", config.publish_every, minimum=1)
    as_float("ray.actor_timeout_s", config.actor_timeout_s, minimum=0.0, strict=True)
    as_float("ray.actor_startup_s", config.actor_startup_s, minimum=0.0, strict=True)
    for key in ("actor_cpus", "job_cpus", "job_gpus", "learner_cpus"):
        as_float(f"ray.{key}", getattr(config, key), minimum=0.0)
    if config.learner_gpus is not None:
        as_float("ray.learner_gpus", config.learner_gpus, minimum=0.0)
    if config.learner_resource is not None and not re.fullmatch(r"[\w.\-]+", str(config.learner_resource)):
        raise ConfigError(f"ray.learner_resource={config.learner_resource} is not a resource name; expected the name "
                          "a node was started with (`ray start --resources='{\"learner\": 1}'`).")
    if config.num_cpus is not None:
        as_int("ray.num_cpus", config.num_cpus, minimum=1)
    as_bool("ray.dashboard", config.dashboard)
    if config.address is not None and not re.fullmatch(ADDRESS_PATTERN, str(config.address)):
        raise ConfigError(f"ray.address={config.address} is not valid; expected auto, local or HOST:PORT "
                          "(the head node's, as `ray start --head` prints it).")
    return config


def import_ray():
    """``ray``, or one sentence saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("Ray is not installed; run `bash scripts/setup.sh` (or `pip install -e .[ray]`).") from None
    return ray


@contextlib.contextmanager
def ray_session(config: RayConfig) -> Iterator[Any]:
    """Ray, started (local) or joined (``address``) for the ``with`` body; a local instance is
    shut down at its end, a joined cluster is left running. Inside a Ray worker (a sweep job that
    trains with actors) the worker's own connection is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": bool(config.dashboard), "log_to_driver": True,
                              "logging_level": logging.WARNING, "configure_logging": False}
    if config.local:
        kwargs["num_cpus"] = config.num_cpus
    else:
        kwargs["address"] = config.address
    try:
        ray.init(**kwargs)
    except ConnectionError as error:
        raise ConfigError(f"cannot reach the Ray cluster at ray.address={config.address} ({error}); start it with "
                          "`ray start --head` or drop ray.address for a local instance.") from None
    log.info("ray: %s (%s CPUs)", "local instance" if config.local else f"cluster at {config.address}",
             ray.cluster_resources().get("CPU", 0))
    try:
        yield ray
    finally:
        ray.shutdown()
