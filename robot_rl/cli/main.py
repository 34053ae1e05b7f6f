"""``robot-rl``: one entry point, one verb per stage. Heavy imports happen inside each verb.

Every verb reads its command line in one style (robot_rl.cli.args): ``robot-rl VERB
[SUBCOMMAND] [PATH ...] [key=value ...]``, the overrides composed by Hydra against the verb's own
config; ``robot-rl launch`` keeps ROS 2's ``name:=value``.

Errors: every verb runs under one handler. A user error (a bad value, a missing or damaged
file, an unwritable directory, a refused contract) prints one sentence on stderr and exits 2;
Ctrl-C prints one line and exits 130; anything else is a bug in robot_rl and prints one line
("internal error") and exits 1. In every case the full traceback goes to a log file
(``$ROBOT_RL_LOG_DIR``, else ``runs/logs/`` under the working directory, else the system's
temp directory), never to the terminal.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
import time
import traceback
from pathlib import Path

# verb -> (module with run(argv) -> int, one-line help). Kept import-free so --help is instant.
VERBS: dict[str, tuple[str, str]] = {
    "pipeline": ("robot_rl.cli.pipeline", "the main job end to end: demos, reward model, SAC, eval, ROS 2, report"),
    "sim": ("robot_rl.cli.sim", "look at the simulated world: `sim render`, `sim list`"),
    "record": ("robot_rl.cli.record", "teleoperate or script the sim arm and keep episodes in Zarr"),
    "data": ("robot_rl.cli.data", "inspect and fix Zarr episode stores: info, validate, repair, merge, ..."),
    "reward": ("robot_rl.cli.reward", "learned vision-language rewards: `reward train`, `reward eval`, `reward label`"),
    "train": ("robot_rl.cli.train", "train a policy (sac, drq, tdmpc2, cqn_as, iql, idql, saq, bc, distill) and export it: ONNX + policy.yaml"),
    "sysid": ("robot_rl.cli.sysid", "fit the sim's physics (masses, damping, gains, latency) to recorded arm motion"),
    "eval": ("robot_rl.cli.eval", "evaluate a policy artifact or checkpoint: success rate, return, video grid"),
    "launch": ("robot_rl.cli.launch", "run a ROS 2 launch file (deploy_sim, deploy_robot, teleop_record)"),
}

USAGE = """usage: robot-rl <verb> [args] [key=value ...]

A sim-to-real robot learning stack: MuJoCo tasks, Zarr episodes, learned rewards, ROS 2.

verbs:
{verbs}

Run `robot-rl <verb> --help` for a verb's own arguments. Every verb reads
`robot-rl VERB [SUBCOMMAND] [PATH ...] [key=value ...]` (launch: ROS 2's name:=value).
A mistake in the input prints one sentence and exits 2 (Ctrl-C: 130, a bug in robot_rl: 1);
the full traceback is kept in a log file under $ROBOT_RL_LOG_DIR (default runs/logs/).
"""

LOG_DIR_ENV = "ROBOT_RL_LOG_DIR"

# Exceptions that mean "the input was wrong", by (module, class name). Looked up only in
# modules already imported, so the handler itself never imports anything heavy.
USER_ERRORS = (
    ("robot_rl.config", "ConfigError"),
    ("robot_rl.policy.spec", "ContractError"),
    ("robot_rl.data.format", "StoreError"),
    ("robot_rl.train.checkpoint", "CheckpointError"),
    ("robot_rl.train.demos", "DataError"),
    ("robot_rl.media", "MediaError"),
    ("reward_models.config", "RewardModelError"),
    ("robot_rl.policy.backends", "BackendUnavailable"),
    ("hardware.ros.launch_file", "LaunchError"),
    ("hardware.ros.closed_loop", "RosEvalError"),
    ("hardware.ros.robot_env", "RobotConnectionError"),  # the robot stopped answering: not a bug of ours
    ("hardware.ros.isolation", "DomainsExhausted"),  # other robot_rl processes hold every private domain
    ("robot_rl.distributed.robot_learner", "LearnerLostError"),  # the learner's machine went away: neither
    ("omegaconf.errors", "OmegaConfBaseException"),
    ("hydra.errors", "HydraException"),
    ("yaml", "YAMLError"),
)
# OSErrors that come from the user's paths or machine, not from a bug.
USER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOSPC,
               errno.EROFS, errno.ENAMETOOLONG, errno.ENOTEMPTY, errno.EPIPE, errno.EDQUOT}


def usage() -> str:
    width = max(len(v) for v in VERBS)
    return USAGE.format(verbs="\n".join(f"  {v.ljust(width)}  {h}" for v, (_, h) in VERBS.items()))


def main(argv: list[str] | None = None) -> int:
    """Run one verb; returns the exit code (0 ok, 2 user error, 130 Ctrl-C, 1 a bug in robot_rl)."""
    try:
        return _main(argv)
    except BrokenPipeError:  # the reader of --help / usage went away: nothing left to say
        return 0
    finally:
        _flush_stdout()


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"robot-rl: unknown verb {verb!r}; choose one of: {', '.join(VERBS)}.", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("torch").setLevel(logging.WARNING)  # its INFO stats at exit would follow our last line
    # zarr writes chunks concurrently; on a full disk asyncio logs each failed write's traceback
    # ("Future exception was never retrieved") although the store's own error is what we report
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    try:
        module = importlib.import_module(VERBS[verb][0])
        code = int(module.run(rest) or 0)
        _flush_stdout()
        return code
    except KeyboardInterrupt:
        _flush_stdout()
        print(f"\nrobot-rl {verb}: interrupted.", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - the one place every error becomes one sentence
        _flush_stdout()
        log = write_log(verb, argv, error)
        where = f"traceback in {log}" if log else "the traceback could not be saved (no writable log directory)"
        if is_user_error(error):
            print(f"robot-rl {verb}: {describe(error)} ({where})", file=sys.stderr)
            return 2
        print(f"robot-rl {verb}: internal error: {type(error).__name__}: {first_line(error)}; {where}",
              file=sys.stderr)
        return 1


def is_user_error(error: BaseException) -> bool:
    """True for an exception that a wrong input, file or path causes (see USER_ERRORS); running
    out of memory counts, since sizes the user chose cause it."""
    if isinstance(error, MemoryError):
        return True
    if isinstance(error, OSError):
        return error.errno in USER_ERRNOS or isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError,
                                                                NotADirectoryError, BrokenPipeError))
    for module_name, name in USER_ERRORS:
        cls = getattr(sys.modules.get(module_name), name, None)
        if isinstance(cls, type) and isinstance(error, cls):
            return True
    return False


def describe(error: BaseException) -> str:
    """One sentence for a user error; OSErrors name the path and what was wrong with it."""
    if isinstance(error, MemoryError):
        return (f"ran out of memory ({first_line(error) if str(error) else 'MemoryError'}); expected smaller sizes "
                "(image_size, batch_size, hidden_dim, episodes, num_envs) for this machine.")
    if isinstance(error, BrokenPipeError):
        return ("a pipe closed before all output was written (the program reading it, or a helper such as ffmpeg, "
                "stopped early).")
    if isinstance(error, OSError) and error.strerror:
        path = error.filename if error.filename is not None else ""
        hint = {errno.EACCES: "; expected a path you may read and write", errno.EPERM: "; expected a path you may "
                "read and write", errno.EROFS: "; expected a writable location", errno.ENOENT: "; check the path",
                errno.EISDIR: "; expected a file there", errno.ENOTDIR: "; expected a directory there",
                errno.ENOSPC: "; free some space or choose another out=",
                errno.ENAMETOOLONG: "; expected a shorter path (at most 255 characters a part)"}.get(error.errno, "")
        from robot_rl.config import shorten

        return shorten(f"{path}: {error.strerror.lower()}{hint}." if path else f"{error.strerror.lower()}{hint}.")
    text = first_line(error)
    return text if text.endswith((".", "?", ")")) else text + "."


def first_line(error: BaseException) -> str:
    """The first line of the message, with the config key OmegaConf names on a later line."""
    from robot_rl.config import one_line  # a light module: re and pathlib only

    return one_line(error)


def log_dirs() -> list[Path]:
    """Where tracebacks go, in order of preference."""
    import tempfile

    dirs = [Path(os.environ[LOG_DIR_ENV])] if os.environ.get(LOG_DIR_ENV) else []
    return [*dirs, Path("runs") / "logs", Path(tempfile.gettempdir()) / "robot-rl-logs"]


def write_log(verb: str, argv: list[str], error: BaseException) -> Path | None:
    """Write the command line and the full traceback to a new log file; None when nowhere is writable."""
    text = (f"robot-rl {' '.join(argv)}\ncwd: {os.getcwd()}\n\n"
            + "".join(traceback.format_exception(type(error), error, error.__traceback__)))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for directory in log_dirs():
        path = directory / f"robot-rl-{verb}-{stamp}-{os.getpid()}.log"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return path.resolve()
        except OSError:
            continue
    return None


def _flush_stdout() -> None:
    """Flush now, so a closed pipe (``robot-rl ... | head``) cannot print a traceback at exit."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass


if __name__ == "__main__":
    sys.exit(main())
