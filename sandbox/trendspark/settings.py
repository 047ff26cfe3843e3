"""TrendSpark's secrets in the sandbox (made once per home) and the names its code reads them by:
the apps' API_TOKENS, the Telegram bot and chat, Grafana's service account token."""

from __future__ import annotations

import secrets

from sandbox import kit
from sandbox.state import new_secret
from sandbox.system import Context

SERVICE_ROLE = "trendspark_service"  # the compose file's `trend` user: the apps write with it
ADMIN_TOKEN, VIEWER_TOKEN, SERVICE_TOKEN = "admin_token", "viewer_token", "service_token"
TELEGRAM_TOKEN, TELEGRAM_CHAT, GRAFANA_TOKEN = "telegram_token", "telegram_chat", "grafana_token"
CHAT_ID = "-1001234567890"  # a group chat's id
STREAM_ENABLED = True  # X_STREAM_ENABLED in the sandbox's deployment (both apps read it)


def new_settings() -> dict[str, str]:
    return {
        kit.SERVICE_PASSWORD: new_secret(),
        ADMIN_TOKEN: new_secret(),
        VIEWER_TOKEN: new_secret(),
        SERVICE_TOKEN: new_secret(),
        # A bot token's shape: the bot's id, a colon, the secret.
        TELEGRAM_TOKEN: f"{secrets.randbelow(9 * 10**9) + 10**9}:{new_secret()}",
        TELEGRAM_CHAT: CHAT_ID,
        GRAFANA_TOKEN: "glsa_" + new_secret(),
    }


def api_tokens(ctx: Context) -> dict[str, str]:
    """API_TOKENS as the apps are started with: token -> role."""
    s = ctx.settings
    return {s[ADMIN_TOKEN]: "admin", s[VIEWER_TOKEN]: "viewer", s[SERVICE_TOKEN]: "service"}
