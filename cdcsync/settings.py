"""Reading typed settings from the environment: what every layer's settings share.

Each setting has one environment variable; a bad value raises ``ConfigError``
naming that variable and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping

from cdcsync.errors import ConfigError


def int_setting(env: Mapping[str, str], key: str, default: int, *, low: int, high: int, fix: str) -> int:
    """An integer setting in [low, high]; the error names the key and the fix."""
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(key, f"{raw!r} is not an integer", fix) from None
    if not low <= value <= high:
        raise ConfigError(key, f"{value} is out of range", fix)
    return value


def port_setting(env: Mapping[str, str], key: str, default: int) -> int:
    return int_setting(
        env, key, default, low=1024, high=65535, fix="set it to an integer from 1024 to 65535 (an unprivileged port)"
    )


def positive_int_setting(env: Mapping[str, str], key: str, default: int) -> int:
    return int_setting(env, key, default, low=1, high=2**63 - 1, fix="set it to a positive integer")


def choice_setting(env: Mapping[str, str], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(key) or default
    if value not in choices:
        raise ConfigError(
            key, f"{value!r} is not one of {', '.join(choices)}", f"set it to one of {', '.join(choices)}"
        )
    return value
