"""dreamscope: measure, diagnose and fix policy-entropy dynamics in DreamerV3."""

__version__ = "0.1.0"


def _register_envs() -> None:
    """Make `gym.make("dreamscope/AirHockey-v1")` work after `import dreamscope`."""
    try:
        from dreamscope.envs import register_envs
    except ImportError:  # gymnasium missing: the entropy tools still work
        return
    register_envs()


_register_envs()
