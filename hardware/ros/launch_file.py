"""ROS 2's YAML launch format, read without the ``launch`` package (it has no PyPI wheel).

Supported, with ROS 2's meaning: ``arg`` (name, default, description), ``let``, ``node`` (pkg,
exec, name, namespace, param [name/value or from: file], remap, args, output, if/unless),
``executable`` (cmd, name, if/unless), ``group`` (children, if/unless); substitutions
``$(var x)``, ``$(env X [default])``, ``$(find-pkg-share pkg)``, ``$(dirname)``. Anything else is
refused by name rather than ignored.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "robot_rl"
REPO_LAUNCH_DIR = Path(__file__).resolve().parents[2] / "launch"
_SUBSTITUTION = re.compile(r"\$\(([a-z\-]+)((?:\s+[^)\s]+)*)\s*\)")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


class LaunchError(ValueError):
    """A launch file or argument a user can fix; the message is one sentence."""


@dataclass
class ArgSpec:
    name: str
    default: str | None = None
    description: str = ""


@dataclass
class ProcessSpec:
    """One process to start: a ROS node (``package``/``executable``) or a plain command (``cmd``)."""

    name: str
    package: str = ""
    executable: str = ""
    cmd: list[str] = field(default_factory=list)
    namespace: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    param_files: list[str] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    args: list[str] = field(default_factory=list)


@dataclass
class LaunchDescription:
    path: Path
    args: dict[str, ArgSpec]
    processes: list[ProcessSpec]


def _installed_share_dirs(package: str) -> list[Path]:
    """Where pip puts data files: ``<prefix>/share/<package>`` (and the user base for --user)."""
    import site

    return [Path(sys.prefix) / "share" / package, Path(site.USER_BASE or "~/.local") / "share" / package]


def _in_checkout() -> bool:
    # A source checkout has launch/ beside hardware/; on an install that name may be ROS 2's own package.
    return (REPO_LAUNCH_DIR / "deploy_sim.launch.yaml").is_file()


def share_dir(package: str = PACKAGE) -> Path:
    """The package's share directory: the source checkout's, or ``<prefix>/share/<package>``."""
    if package == PACKAGE and _in_checkout():
        return REPO_LAUNCH_DIR.parent
    for installed in _installed_share_dirs(package):
        if installed.is_dir():
            return installed
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(package))
    except Exception:  # noqa: BLE001 - ament raises its own error types
        raise LaunchError(f"package {package!r} has no share directory (looked in {sys.prefix}/share and the "
                          "ament index).") from None


def resolve_launch_file(name: str) -> Path:
    """A path as given, else a file of that name in the package's launch folders."""
    path = Path(name)
    if path.is_file():
        return path
    folders = ([REPO_LAUNCH_DIR] if _in_checkout() else []) + [d / "launch" for d in _installed_share_dirs(PACKAGE)]
    candidates = [folder / path.name for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c.parent) for c in candidates)
    raise LaunchError(f"launch file {name!r} not found (also looked in {looked}).")


def load_launch_file(path: Path, arguments: dict[str, str]) -> LaunchDescription:
    """Parse ``path`` with ``name:=value`` ``arguments``; refuses unknown and missing arguments."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise LaunchError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("launch"), list):
        raise LaunchError(f"{path} is not a ROS 2 YAML launch file: it needs a top-level 'launch:' list.")
    reader = _Reader(path, dict(arguments))
    reader.actions(data["launch"])
    unknown = sorted(set(arguments) - set(reader.args))
    if unknown:
        known = ", ".join(reader.args) or "none"
        raise LaunchError(f"{path.name} has no argument {unknown[0]!r}; its arguments: {known}.")
    return LaunchDescription(path, reader.args, reader.processes)


class _Reader:
    def __init__(self, path: Path, arguments: dict[str, str]) -> None:
        self.path, self.given = path, arguments
        self.vars: dict[str, str] = {}
        self.args: dict[str, ArgSpec] = {}
        self.processes: list[ProcessSpec] = []

    def actions(self, entries: list) -> None:
        for entry in entries:
            if not isinstance(entry, dict) or len(entry) != 1:
                raise LaunchError(f"{self.path.name}: each launch entry must be one action (arg, let, node, ...), "
                                  f"got {entry!r}.")
            (kind, body), = entry.items()
            handler = getattr(self, f"_{kind.replace('-', '_')}", None)
            if handler is None:
                raise LaunchError(f"{self.path.name}: action {kind!r} is not supported; use arg, let, node, "
                                  "executable or group.")
            if self._enabled(body):
                handler(body)

    def _enabled(self, body: dict) -> bool:
        condition = body.get("if"), body.get("unless")
        if condition[0] is not None and not self._bool(condition[0]):
            return False
        return not (condition[1] is not None and self._bool(condition[1]))

    def _bool(self, value: Any) -> bool:
        text = str(self.sub(value)).strip().lower()
        if text not in _TRUE | _FALSE:
            raise LaunchError(f"{self.path.name}: condition {value!r} is {text!r}, not true or false.")
        return text in _TRUE

    def _arg(self, body: dict) -> None:
        name = body["name"]
        default = body.get("default")
        self.args[name] = ArgSpec(name, None if default is None else str(default), body.get("description", ""))
        if name in self.given:
            self.vars[name] = self.given[name]
        elif default is not None:
            self.vars[name] = self.sub(str(default))
        else:
            about = f" ({body['description']})" if body.get("description") else ""
            raise LaunchError(f"{self.path.name} needs argument {name}:=<value>{about}.")

    def _let(self, body: dict) -> None:
        self.vars[body["name"]] = self.sub(str(body["value"]))

    def _group(self, body: dict) -> None:
        self.actions(body.get("children", []))

    def _executable(self, body: dict) -> None:
        import shlex

        cmd = shlex.split(self.sub(str(body["cmd"])))
        self.processes.append(ProcessSpec(name=self.sub(str(body.get("name", Path(cmd[0]).name))), cmd=cmd))

    def _node(self, body: dict) -> None:
        for key in ("pkg", "exec"):
            if key not in body:
                raise LaunchError(f"{self.path.name}: a node needs '{key}' ({body!r}).")
        spec = ProcessSpec(name=self.sub(str(body.get("name", body["exec"]))), package=self.sub(str(body["pkg"])),
                           executable=self.sub(str(body["exec"])), namespace=self.sub(str(body.get("namespace", ""))))
        for param in body.get("param", []):
            if "from" in param:
                spec.param_files.append(self.sub(str(param["from"])))
            else:
                spec.parameters[param["name"]] = self.value(param["value"])
        spec.remaps = [(self.sub(str(r["from"])), self.sub(str(r["to"]))) for r in body.get("remap", [])]
        spec.args = [self.sub(a) for a in str(body.get("args", "")).split()] if body.get("args") else []
        self.processes.append(spec)

    def value(self, value: Any) -> Any:
        """A parameter value: substituted strings are typed as YAML, as launch_ros does."""
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str) and "$(" in value:
            text = self.sub(value)
            try:
                return yaml.safe_load(text) if text.strip() else text
            except yaml.YAMLError:
                return text
        return value

    def sub(self, text: str) -> str:
        def replace(match: re.Match) -> str:
            kind, rest = match.group(1), match.group(2).split()
            if kind == "var":
                if not rest or rest[0] not in self.vars:
                    raise LaunchError(f"{self.path.name}: $(var {' '.join(rest)}) is not a declared argument.")
                return self.vars[rest[0]]
            if kind == "env":
                return os.environ.get(rest[0], rest[1] if len(rest) > 1 else "")
            if kind == "find-pkg-share":
                return str(share_dir(rest[0]))
            if kind == "dirname":
                return str(self.path.parent.resolve())
            raise LaunchError(f"{self.path.name}: substitution $({kind}) is not supported; use var, env, "
                              "find-pkg-share or dirname.")

        return _SUBSTITUTION.sub(replace, str(text))
