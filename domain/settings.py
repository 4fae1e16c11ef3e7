"""Settings from the environment (see interface.md). Secrets stay in the worker and ingress processes."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.alerts import DEFAULT_SEVERITY_MAP, parse_severity_map
from domain.config import WarroomConfig, load_config
from domain.statuspage import parse_components
from domain.vocab import DEFAULT_SEVERITY, Severity

_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
CallProviderSetting = Literal["none", "zoom", "meet"]


class Settings(BaseSettings):
    # An empty variable (`SLACK_APP_TOKEN=` in an .env file) means unset, not "set to nothing".
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    temporal_address: str = Field(default="localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    # Read here so log redaction knows it; worker.connect_args sends it. The other TEMPORAL_* variables
    # (TLS, profiles) are read by temporalio.envconfig only (domain.temporal_profile).
    temporal_api_key: SecretStr | None = Field(default=None, alias="TEMPORAL_API_KEY")
    task_queue: str = Field(default="warroom", alias="WARROOM_TASK_QUEUE")
    http_port: int = Field(default=3000, alias="WARROOM_HTTP_PORT")
    broadcast_channels_csv: str = Field(default="", alias="WARROOM_BROADCAST_CHANNELS")
    call_provider: CallProviderSetting = Field(default="none", alias="WARROOM_CALL_PROVIDER")
    alert_token: SecretStr | None = Field(default=None, alias="WARROOM_ALERT_TOKEN")
    # true: alert routes without a credential answer anyone (a private network); `warroom dev` sets it
    alerts_unauthenticated: bool = Field(default=False, alias="WARROOM_ALERTS_UNAUTHENTICATED")
    default_severity: Severity = Field(default=DEFAULT_SEVERITY, alias="WARROOM_DEFAULT_SEVERITY")
    grafana_secret: SecretStr | None = Field(default=None, alias="WARROOM_GRAFANA_SECRET")
    grafana_timestamp_header: str = Field(default="", alias="WARROOM_GRAFANA_TIMESTAMP_HEADER")
    grafana_signature_header: str = Field(
        default="X-Grafana-Alerting-Signature", min_length=1, alias="WARROOM_GRAFANA_SIGNATURE_HEADER"
    )
    # PagerDuty (/alerts/pagerduty): the V3 webhook subscription's signing secret; an Events API v2
    # routing key that authenticates an Events v2 body on its own
    pagerduty_webhook_secret: SecretStr | None = Field(default=None, alias="PAGERDUTY_WEBHOOK_SECRET")
    pagerduty_routing_key: SecretStr | None = Field(default=None, alias="PAGERDUTY_ROUTING_KEY")
    # Paging (`/incident page`, domain.paging): PagerDuty's REST API (an API key and the email of the user
    # it acts as), Opsgenie's Alert API (an API integration's key) and the credential Opsgenie's outgoing
    # webhook sends to /alerts/opsgenie; which pager (unset: whichever is set up); resolving pages at resolve.
    pagerduty_api_token: SecretStr | None = Field(default=None, alias="PAGERDUTY_API_TOKEN")
    pagerduty_from_email: str | None = Field(default=None, alias="PAGERDUTY_FROM_EMAIL")
    pagerduty_api_url: str = Field(default="https://api.pagerduty.com", alias="PAGERDUTY_API_URL")
    opsgenie_api_key: SecretStr | None = Field(default=None, alias="OPSGENIE_API_KEY")
    opsgenie_api_url: str = Field(default="https://api.opsgenie.com", alias="OPSGENIE_API_URL")
    opsgenie_webhook_token: SecretStr | None = Field(default=None, alias="OPSGENIE_WEBHOOK_TOKEN")
    pager: Literal["pagerduty", "opsgenie"] | None = Field(default=None, alias="WARROOM_PAGER")
    pager_resolve_on_resolve: bool = Field(default=True, alias="WARROOM_PAGER_RESOLVE_ON_RESOLVE")
    alert_severity_map_csv: str = Field(default="", alias="WARROOM_ALERT_SEVERITY_MAP")
    alert_resolve_mitigates: bool = Field(default=False, alias="WARROOM_ALERT_RESOLVE_MITIGATES")
    # Storm control: at most this many incidents declared from alerts per window; 0 turns it off.
    alert_storm_cap: int = Field(default=5, ge=0, le=1000, alias="WARROOM_ALERT_STORM_CAP")
    alert_storm_window: int = Field(default=300, ge=1, le=86_400, alias="WARROOM_ALERT_STORM_WINDOW")
    # Unset: JSON lines, except under `warroom dev`, which prints readable lines.
    log_format: Literal["json", "console"] | None = Field(default=None, alias="WARROOM_LOG_FORMAT")
    log_level: str = Field(default="info", alias="WARROOM_LOG_LEVEL")
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535, alias="WARROOM_WORKER_METRICS_PORT")
    # Worker tuning (README "Worker tuning"): incidents kept in memory between workflow tasks (0: none, each
    # task replays its history), and how many workflow / activity tasks one worker runs at once.
    max_cached_workflows: int = Field(default=500, ge=0, le=100_000, alias="WARROOM_MAX_CACHED_WORKFLOWS")
    max_concurrent_workflow_tasks: int = Field(
        default=100, ge=2, le=10_000, alias="WARROOM_MAX_CONCURRENT_WORKFLOW_TASKS"
    )
    max_concurrent_activities: int = Field(
        default=100, ge=1, le=10_000, alias="WARROOM_MAX_CONCURRENT_ACTIVITIES"
    )
    # Zoom Server-to-Server OAuth, Google Meet (service account with delegation), Jira Cloud.
    zoom_account_id: str | None = Field(default=None, alias="ZOOM_ACCOUNT_ID")
    zoom_client_id: str | None = Field(default=None, alias="ZOOM_CLIENT_ID")
    zoom_client_secret: SecretStr | None = Field(default=None, alias="ZOOM_CLIENT_SECRET")
    zoom_api_url: str = Field(default="https://api.zoom.us/v2", alias="ZOOM_API_URL")
    zoom_oauth_url: str = Field(default="https://zoom.us/oauth/token", alias="ZOOM_OAUTH_URL")
    google_credentials_path: str | None = Field(default=None, alias="GOOGLE_APPLICATION_CREDENTIALS")
    google_meet_subject: str | None = Field(default=None, alias="GOOGLE_MEET_SUBJECT")
    google_meet_api_url: str = Field(default="https://meet.googleapis.com/v2", alias="GOOGLE_MEET_API_URL")
    jira_url: str | None = Field(default=None, alias="JIRA_URL")
    jira_email: str | None = Field(default=None, alias="JIRA_EMAIL")
    jira_api_token: SecretStr | None = Field(default=None, alias="JIRA_API_TOKEN")
    jira_project_key: str | None = Field(default=None, alias="JIRA_PROJECT_KEY")
    jira_issue_type: str = Field(default="Task", alias="JIRA_ISSUE_TYPE")
    # Atlassian Statuspage (README "Statuspage"): an organization API key, the page public incidents go on,
    # and the components `/incident statuspage` may name (`api=<component id>,checkout=<component id>`).
    statuspage_api_key: SecretStr | None = Field(default=None, alias="STATUSPAGE_API_KEY")
    statuspage_page_id: str | None = Field(default=None, alias="STATUSPAGE_PAGE_ID")
    statuspage_api_url: str = Field(default="https://api.statuspage.io/v1", alias="STATUSPAGE_API_URL")
    statuspage_components_csv: str = Field(default="", alias="STATUSPAGE_COMPONENTS")
    # Path of warroom.toml (structured configuration, domain.config); unset: none.
    config_path: str | None = Field(default=None, alias="WARROOM_CONFIG")
    # Payload encryption (domain.encryption): `id:base64key[,id:base64key...]`, the first one encrypts.
    encryption_key: SecretStr | None = Field(default=None, alias="WARROOM_ENCRYPTION_KEY")
    # `warroom codec-server`: origins of the Temporal UI allowed to call it, its bearer token and its port.
    codec_cors_origins_csv: str = Field(default="http://localhost:8233", alias="WARROOM_CODEC_CORS_ORIGINS")
    codec_token: SecretStr | None = Field(default=None, alias="WARROOM_CODEC_TOKEN")
    codec_port: int = Field(default=8888, ge=0, le=65535, alias="WARROOM_CODEC_PORT")

    @field_validator("call_provider", mode="before")
    @classmethod
    def _lower_provider(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("pager", mode="before")
    @classmethod
    def _lower_pager(cls, value: object) -> object:
        return value.strip().lower() or None if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"WARROOM_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
        return level

    @property
    def alert_severity_map(self) -> dict[str, Severity]:
        """Alert `severity` label -> incident severity (default critical/error/warning -> sev1/2/3)."""
        if not self.alert_severity_map_csv.strip():
            return dict(DEFAULT_SEVERITY_MAP)
        return parse_severity_map(self.alert_severity_map_csv)

    @cached_property
    def config(self) -> WarroomConfig:
        """warroom.toml, read once; a missing or invalid file raises domain.config.ConfigError."""
        return load_config(self.config_path)

    @property
    def broadcast_channels(self) -> tuple[str, ...]:
        """Channel IDs from WARROOM_BROADCAST_CHANNELS; anything that is not a channel ID is an error."""
        ids = tuple(part.strip() for part in self.broadcast_channels_csv.split(",") if part.strip())
        bad = [i for i in ids if not _CHANNEL_ID.match(i)]
        if bad:
            raise ValueError(
                f"WARROOM_BROADCAST_CHANNELS must hold channel IDs like C0123ABCD, not {', '.join(bad)}"
            )
        return ids

    @property
    def codec_cors_origins(self) -> tuple[str, ...]:
        """Origins from WARROOM_CODEC_CORS_ORIGINS (`http://localhost:8233`), without a trailing slash."""
        parts = (part.strip().rstrip("/") for part in self.codec_cors_origins_csv.split(","))
        return tuple(part for part in parts if part)

    @property
    def statuspage_components(self) -> dict[str, str]:
        """STATUSPAGE_COMPONENTS as {name: component ID}; a malformed entry is a ValueError."""
        return parse_components(self.statuspage_components_csv)

    def secrets(self) -> list[str]:
        """Every configured secret value, for tests and log scrubbing. Each encryption key counts on its own
        too, so one logged alone is still scrubbed."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.alert_token,
            self.grafana_secret,
            self.pagerduty_webhook_secret,
            self.pagerduty_routing_key,
            self.pagerduty_api_token,
            self.opsgenie_api_key,
            self.opsgenie_webhook_token,
            self.zoom_client_secret,
            self.jira_api_token,
            self.statuspage_api_key,
            self.encryption_key,
            self.codec_token,
            self.temporal_api_key,
        ]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        if self.encryption_key is not None:
            entries = self.encryption_key.get_secret_value().split(",")
            found += [key for entry in entries if (key := entry.partition(":")[2].strip())]
        return found

    def missing_for(self, integration: str) -> list[str]:
        """The environment variables `integration` (zoom, meet, jira, statuspage, pagerduty, opsgenie) still
        needs; empty when it is set up."""
        needed: dict[str, tuple[tuple[str, object], ...]] = {
            "zoom": (
                ("ZOOM_ACCOUNT_ID", self.zoom_account_id),
                ("ZOOM_CLIENT_ID", self.zoom_client_id),
                ("ZOOM_CLIENT_SECRET", self.zoom_client_secret),
            ),
            "meet": (
                ("GOOGLE_APPLICATION_CREDENTIALS", self.google_credentials_path),
                ("GOOGLE_MEET_SUBJECT", self.google_meet_subject),
            ),
            "jira": (
                ("JIRA_URL", self.jira_url),
                ("JIRA_EMAIL", self.jira_email),
                ("JIRA_API_TOKEN", self.jira_api_token),
                ("JIRA_PROJECT_KEY", self.jira_project_key),
            ),
            "statuspage": (
                ("STATUSPAGE_API_KEY", self.statuspage_api_key),
                ("STATUSPAGE_PAGE_ID", self.statuspage_page_id),
            ),
            "pagerduty": (
                ("PAGERDUTY_API_TOKEN", self.pagerduty_api_token),
                ("PAGERDUTY_FROM_EMAIL", self.pagerduty_from_email),
            ),
            "opsgenie": (("OPSGENIE_API_KEY", self.opsgenie_api_key),),
        }
        return [name for name, value in needed[integration] if not _present(value)]


def _present(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return bool(value and str(value).strip())
