"""The Hydra config tree: composing it for the CLI and reading single group files for libraries.

The config files are the one registry: a task, robot or randomisation preset exists when its
YAML file exists in its group folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parent / "conf"


class ConfigError(ValueError):
    """A config choice or value a user gave is not valid; the message says what is."""


def choices(group: str) -> list[str]:
    """The names available in one config group, e.g. ``choices("task")``."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def load_group(group: str, name: str) -> dict[str, Any]:
    """One group file as a plain dict; an unknown name gets an error listing the valid ones."""
    from omegaconf import OmegaConf

    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown {group} {name!r}; choose one of: {', '.join(choices(group))}.")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def compose(overrides: list[str], config_name: str = "config"):
    """The full config with Hydra ``key=value`` overrides applied, as a DictConfig."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            return hydra_compose(config_name=config_name, overrides=overrides)
        except (HydraException, OmegaConfBaseException) as error:
            raise ConfigError(_one_sentence(error)) from None


def _one_sentence(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    for group in ("task", "robot", "randomize", "budget"):
        if f"'{group}'" in text or f"{group}/" in text:
            return f"{text} Valid {group} choices: {', '.join(choices(group))}."
    return text
