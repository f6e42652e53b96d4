"""Settings: ``config/crosspost.toml`` + ``CROSSPOST_<SECTION>__<KEY>`` + secret files.

Loaded once per process by :func:`load_settings`. Secrets never live in the
TOML file: each account names ``token_env`` or ``token_file``, or gets its
secret from systemd's ``$CREDENTIALS_DIRECTORY/<account>``; :meth:`Account.secret`
reads it only when an adapter needs it.

Relative paths (the SQLite file, feed folders, token files) are resolved
against the working directory, as in any Unix tool; the production config
uses absolute paths (docs/admin.md).
"""

from __future__ import annotations

import ipaddress
import os
import stat
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from crosspost.exceptions import ConfigError
from crosspost.i18n import _
from crosspost.inbox_config import InboxConfig, PrivacyConfig
from crosspost.policy import (
    ApprovalConfig,
    DedupConfig,
    QuietHoursConfig,
    RecurrenceConfig,
    check_policy,
    quiet_hours_field,
)

DEFAULT_CATEGORIES = [
    "veranstaltung",
    "stellenangebot",
    "nachrichten",
    "kollegium",
    "tourismus",
    "einrichtungen",
]
DEFAULT_CONFIG_PATHS = (Path("config/crosspost.toml"), Path("/etc/crosspost/crosspost.toml"))
MAX_CONFIG_BYTES = 1024 * 1024


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        # A name such as 127.attacker.example only looks like a loopback address.
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_https(scheme: str, host: str, info: ValidationInfo) -> None:
    """Secrets travel with every request: plain http only to this machine, or where allowed."""
    if scheme == "http" and not _is_loopback(host) and not info.data.get("allow_insecure_http"):
        raise ValueError(
            _(
                "must use https (plain http only for a loopback host such as 127.0.0.1, "
                "or with allow_insecure_http = true in this account)"
            )
        )


class SiteConfig(_Section):
    url: str
    name: str = ""
    timezone: str = "Europe/Berlin"
    link_hosts: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES))

    @field_validator("url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL such as https://www.example.de")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone; use an IANA name such as Europe/Berlin") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        host = urlsplit(self.url).hostname or ""
        return frozenset({host.lower(), *(h.lower() for h in self.link_hosts)})


class DatabaseConfig(_Section):
    url: str = "sqlite:///queue/crosspost.db"


class DaemonConfig(_Section):
    #: how long a claimed delivery stays ours without renewal
    lease_seconds: float = Field(default=60.0, gt=1, le=3600)
    #: requests in flight at once per account, unless the account says otherwise
    concurrency: int = Field(default=4, ge=1, le=64)
    #: how often the daemon looks for changes made by the CLI (seconds)
    poll_interval: float = Field(default=0.2, gt=0, le=60)
    #: on PostgreSQL, where NOTIFY wakes the daemon: how often it still looks (seconds)
    listen_fallback_interval: float = Field(default=5.0, gt=0, le=3600)
    #: attempts before a delivery fails for good
    max_attempts: int = Field(default=8, ge=1, le=100)
    #: waits up to this long happen in the daemon; longer ones go back to the queue
    max_inline_wait: float = Field(default=10.0, ge=0, le=300)
    #: first backoff step and ceiling (seconds)
    backoff_base: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=3600.0, gt=0)
    #: HTTP timeout per request (seconds)
    http_timeout: float = Field(default=30.0, gt=0, le=600)
    #: how often paused accounts are checked again (seconds)
    resume_check_interval: float = Field(default=900.0, gt=0)
    #: private files of the daemon (platform sessions, rotated refresh tokens), 0700;
    #: default: $STATE_DIRECTORY (systemd) or queue/state
    state_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("STATE_DIRECTORY", "queue/state"))
    )
    #: warn in status and accounts check this many days before a token expires
    token_expiry_warning_days: int = Field(default=14, ge=0, le=365)


class AccountBase(_Section):
    """Keys every account has."""

    platform: str
    enabled: bool = True
    #: allow plain http to a host that is not loopback (a proxy on a trusted network);
    #: declared before the URLs so their validators can read it
    allow_insecure_http: bool = False
    base_url: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    concurrency: int | None = Field(default=None, ge=1, le=64)
    #: when the token expires, if the platform does not tell (LinkedIn tokens last 60 days)
    token_expires_at: datetime | None = None
    #: "22:00-06:00" (or a list): deliveries due inside move to the end (crosspost.policy)
    quiet_hours: list[str] | None = None

    #: the platform's public API, used when base_url is not set
    default_base_url: ClassVar[str | None] = None
    #: whether the account needs a secret at all
    needs_secret: ClassVar[bool] = True

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet(cls, value: Any) -> list[str] | None:
        return quiet_hours_field(value)

    @field_validator("token_expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("base_url")
    @classmethod
    def _https_base(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute URL such as https://social.example")
        _require_https(parts.scheme, parts.hostname, info)
        return value.rstrip("/")

    @property
    def api_url(self) -> str:
        url = self.base_url or self.default_base_url
        if not url:
            raise ConfigError(_("base_url is required for this account"))
        return url

    def secret(self, account: str) -> SecretStr:
        """Read this account's one secret, from env, file or systemd credentials."""
        if self.token_env:
            value = os.environ.get(self.token_env)
            if not value:
                raise ConfigError(
                    _(
                        "accounts.{account}.token_env: the environment variable {var} "
                        "is not set or empty; export it or use token_file"
                    ).format(account=account, var=self.token_env)
                )
            return SecretStr(value.strip())
        candidates: list[Path] = []
        if self.token_file:
            candidates.append(self.token_file)
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if creds:
            candidates.append(Path(creds) / account)
        for path in candidates:
            if path.is_file():
                return SecretStr(_read_secret_file(path, account))
        if self.token_file:
            raise ConfigError(
                _("accounts.{account}.token_file: {path} does not exist").format(
                    account=account, path=self.token_file
                )
            )
        raise ConfigError(
            _(
                "accounts.{account}: no secret configured; set token_env or token_file, "
                "or LoadCredential={account}:… in the systemd unit"
            ).format(account=account)
        )


def _read_secret_file(path: Path, account: str, *, key: str | None = None) -> str:
    mode = path.stat().st_mode
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    # systemd's credentials folder is private to the service whatever the file's mode.
    private = bool(creds) and path.resolve().is_relative_to(Path(creds or "/").resolve())
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and not private:
        raise ConfigError(
            _(
                "accounts.{account}.token_file: {path} is readable by others; run: chmod 600 {path}"
            ).format(account=account, path=path)
            if key is None
            else _("{key}: {path} is readable by others; run: chmod 600 {path}").format(
                key=key, path=path
            )
        )
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ConfigError(
            _("accounts.{account}.token_file: {path} is empty").format(account=account, path=path)
            if key is None
            else _("{key}: {path} is empty").format(key=key, path=path)
        )
    return value


class MastodonAccount(AccountBase):
    platform: Literal["mastodon"]
    max_characters: int | None = Field(default=None, ge=1)
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"
    language: str = "de"


class BlueskyAccount(AccountBase):
    platform: Literal["bluesky"]
    handle: str
    language: str = "de"
    default_base_url: ClassVar[str | None] = "https://bsky.social"


class TelegramAccount(AccountBase):
    platform: Literal["telegram"]
    chat: str
    #: the inbox (issue 9): read comments from the channel's linked discussion group with
    #: getUpdates. Only for a bot used by crosspost alone: getUpdates hands every update
    #: out once, and is refused while the bot has a webhook (docs/admin.md)
    fetch_comments: bool = False
    default_base_url: ClassVar[str | None] = "https://api.telegram.org"


class FacebookAccount(AccountBase):
    platform: Literal["facebook"]
    page_id: str
    default_base_url: ClassVar[str | None] = "https://graph.facebook.com/v21.0"


class InstagramAccount(AccountBase):
    platform: Literal["instagram"]
    ig_user_id: str
    default_base_url: ClassVar[str | None] = "https://graph.facebook.com/v21.0"


class ThreadsAccount(AccountBase):
    platform: Literal["threads"]
    user_id: str
    default_base_url: ClassVar[str | None] = "https://graph.threads.net/v1.0"


class LinkedInAccount(AccountBase):
    platform: Literal["linkedin"]
    organization: str
    version: str = Field(default="202411", pattern=r"^20\d{2}(0[1-9]|1[0-2])$")
    #: optional, for token introspection (expiry): the app's client id and the name of
    #: the environment variable holding its client secret
    client_id: str | None = None
    client_secret_env: str | None = None
    default_base_url: ClassVar[str | None] = "https://api.linkedin.com"


class XAccount(AccountBase):
    platform: Literal["x"]
    #: OAuth 2 refresh token (rotated by X on every refresh; the daemon keeps the
    #: newest one in its state_dir and reads this file only to start)
    refresh_token_file: Path | None = None
    #: the OAuth 2 app's client id, needed to refresh
    client_id: str | None = None
    default_base_url: ClassVar[str | None] = "https://api.x.com"


class WebhookAccount(AccountBase):
    platform: Literal["webhook"]
    url: str

    @field_validator("url")
    @classmethod
    def _https_url(cls, value: str, info: ValidationInfo) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute URL")
        _require_https(parts.scheme, parts.hostname, info)
        return value


class FeedAccount(AccountBase):
    platform: Literal["feed"]
    path: Path
    public_url: str | None = None
    needs_secret: ClassVar[bool] = False


class ConsoleAccount(AccountBase):
    platform: Literal["console"]
    needs_secret: ClassVar[bool] = False


Account = Annotated[
    MastodonAccount
    | BlueskyAccount
    | TelegramAccount
    | FacebookAccount
    | InstagramAccount
    | ThreadsAccount
    | LinkedInAccount
    | XAccount
    | WebhookAccount
    | FeedAccount
    | ConsoleAccount,
    Field(discriminator="platform"),
]
PLATFORMS = (
    "mastodon", "bluesky", "telegram", "facebook", "instagram",
    "threads", "linkedin", "x", "webhook", "feed", "console",
)  # fmt: skip


class MailSettings(_Section):
    """``[smtp]``: the mail server alerts (and forwarded requests) are sent through."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    #: upgrade the connection with STARTTLS before logging in or sending (port 587)
    starttls: bool = True
    #: TLS from the first byte instead (port 465); excludes starttls
    tls: bool = False
    username: str | None = None
    #: the password is a secret: never in this file, like an account's token
    password_env: str | None = None
    password_file: Path | None = None
    #: the "From" address
    sender: str
    timeout: float = Field(default=30.0, gt=0, le=600)
    #: verify the server's certificate (turn off only for a server on this machine)
    verify: bool = True
    #: where the test suite or a private CA keeps the certificate to trust
    ca_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _tls_means_no_starttls(cls, data: Any) -> Any:
        """``tls = true`` alone (port 465) needs no ``starttls = false`` beside it."""
        if isinstance(data, dict) and data.get("tls") is True and "starttls" not in data:
            return {**data, "starttls": False}
        return data

    @field_validator("sender")
    @classmethod
    def _address(cls, value: str) -> str:
        if "@" not in value or any(c.isspace() for c in value.strip()):
            raise ValueError("must be a mail address such as crosspost@example.de")
        return value.strip()

    @field_validator("tls")
    @classmethod
    def _one_tls(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("starttls"):
            raise ValueError("tls and starttls exclude each other; set starttls = false")
        return value

    @field_validator("username")
    @classmethod
    def _no_plain_login(cls, value: str | None, info: ValidationInfo) -> str | None:
        encrypted = info.data.get("starttls") or info.data.get("tls")
        if value and not encrypted and not _is_loopback(str(info.data.get("host", ""))):
            raise ValueError(
                "a password must not travel unencrypted; set starttls = true or tls = true"
            )
        return value

    @property
    def encrypted(self) -> bool:
        return self.starttls or self.tls

    def password(self) -> SecretStr | None:
        """The SMTP password from env, file or ``$CREDENTIALS_DIRECTORY/smtp``; None if unset."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigError(
                    _(
                        "smtp.password_env: the environment variable {var} is not set or "
                        "empty; export it or use password_file"
                    ).format(var=self.password_env)
                )
            return SecretStr(value.strip())
        candidates: list[Path] = []
        if self.password_file:
            candidates.append(self.password_file)
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if creds and self.username:
            candidates.append(Path(creds) / "smtp")
        for path in candidates:
            if path.is_file():
                return SecretStr(_read_secret_file(path, "smtp", key="smtp.password_file"))
        if self.password_file:
            raise ConfigError(
                _("smtp.password_file: {path} does not exist").format(path=self.password_file)
            )
        if self.username:
            raise ConfigError(
                _(
                    "smtp: username is set but no password; set password_env or "
                    "password_file, or LoadCredential=smtp:… in the systemd unit"
                )
            )
        return None


AlertKind = Literal["failed", "unknown", "paused", "token_expiry", "late"]
ALERT_KINDS: tuple[AlertKind, ...] = ("failed", "unknown", "paused", "token_expiry", "late")


class AlertsConfig(_Section):
    """``[alerts]``: who is told by mail, about what, how often."""

    #: admin addresses; no addresses, no mail
    to: list[str] = Field(default_factory=list)
    #: which events mail; default all of ALERT_KINDS
    events: list[AlertKind] = Field(default_factory=lambda: list(ALERT_KINDS))
    #: "immediate": one mail per event kind and account at most every throttle_minutes;
    #: "digest": one summary a day at digest_time; "both"
    mode: Literal["immediate", "digest", "both"] = "immediate"
    throttle_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    #: local time of the site's time zone, HH:MM
    digest_time: str = Field(default="07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    #: mail when an account's token expires within this many days
    token_expiry_days: int = Field(default=14, ge=0, le=365)
    #: mail when a due delivery is still waiting this many minutes after its time
    late_minutes: int = Field(default=15, ge=1, le=7 * 24 * 60)
    #: how often the daemon looks for events to mail (seconds)
    interval: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c.isspace() for c in address.strip()):
                raise ValueError(f"{address!r} is not a mail address such as it@example.de")
        return [address.strip() for address in value]


class CheckConfig(_Section):
    """``[check]``: thresholds of ``crosspost status --check`` (warning, critical)."""

    heartbeat_warning_seconds: float = Field(default=120.0, gt=0)
    heartbeat_critical_seconds: float = Field(default=600.0, gt=0)
    #: how late the latest due delivery may be (minutes)
    late_warning_minutes: float = Field(default=5.0, ge=0)
    late_critical_minutes: float = Field(default=30.0, ge=0)
    #: failed deliveries that changed within failed_window_hours; 0 turns a level off
    failed_warning: int = Field(default=0, ge=0)
    failed_critical: int = Field(default=1, ge=0)
    failed_window_hours: float = Field(default=24.0, gt=0)
    #: deliveries in state unknown (they need a person, whatever their age)
    unknown_warning: int = Field(default=0, ge=0)
    unknown_critical: int = Field(default=1, ge=0)
    paused_warning: int = Field(default=0, ge=0)
    paused_critical: int = Field(default=1, ge=0)
    #: days before a token expires
    token_warning_days: int = Field(default=14, ge=0)
    token_critical_days: int = Field(default=3, ge=0)


class MetricsConfig(_Section):
    """``[metrics]``: Prometheus ``/metrics``, off unless ``listen`` is set."""

    #: host:port, loopback only, e.g. 127.0.0.1:9464
    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _loopback(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        host = host.strip("[]")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("must be host:port such as 127.0.0.1:9464 (port 0: any free port)")
        if not _is_loopback(host):
            raise ValueError("must be a loopback address such as 127.0.0.1:9464 (use a proxy)")
        return value

    @property
    def address(self) -> tuple[str, int]:
        host, _sep, port = (self.listen or "").rpartition(":")
        return host.strip("[]"), int(port)


class RetentionConfig(_Section):
    """``[retention]``: how long history is kept before the daemon prunes it."""

    #: attempts (and sent alerts) of finished deliveries older than this are deleted; 0 = keep
    attempts_days: int = Field(default=365, ge=0)


class MediaConfig(_Section):
    """Where Instagram and Threads fetch a post's images when no enabled ``feed`` account
    with ``public_url`` publishes them: the daemon copies each image into ``path`` (a
    folder the web server serves) and passes ``<public_base_url>/<post>-<n><ext>``."""

    path: Path | None = None
    public_base_url: str | None = None

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(_("must be an absolute https URL (Meta fetches images only so)"))
        return value.rstrip("/")

    @model_validator(mode="after")
    def _both_or_neither(self) -> MediaConfig:
        if (self.path is None) != (self.public_base_url is None):
            raise ValueError(_("set both path and public_base_url, or neither"))
        return self


class EvaluationConfig(_Section):
    """``[evaluation]``: engagement and follower figures for the yearly report (issue 7)."""

    #: the daemon collects figures in the background; false: only `crosspost metrics collect`
    collect: bool = True
    #: how often the daemon looks for samples that are due (seconds)
    interval: float = Field(default=3600.0, ge=60, le=7 * 24 * 3600)
    #: the ages (days after publication) at which a post's figures are sampled
    sample_ages: list[int] = Field(default_factory=lambda: [1, 7, 30], min_length=1)
    #: at most this many platform requests per account and run (spreads the load)
    requests_per_run: int = Field(default=200, ge=1, le=100_000)
    #: a delivery published at most this many minutes after its time counts as on time
    on_time_minutes: int = Field(default=5, ge=0, le=24 * 60)

    @field_validator("sample_ages")
    @classmethod
    def _ages(cls, value: list[int]) -> list[int]:
        if any(age < 1 or age > 366 for age in value):
            raise ValueError("every age must be a whole number of days from 1 to 366")
        return sorted(set(value))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CROSSPOST_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    site: SiteConfig
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    accounts: dict[str, Account] = Field(default_factory=dict)
    routing: dict[str, list[str]] = Field(default_factory=dict)
    smtp: MailSettings | None = None
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    check: CheckConfig = Field(default_factory=CheckConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    quiet_hours: QuietHoursConfig = Field(default_factory=QuietHoursConfig)
    recurrence: RecurrenceConfig = Field(default_factory=RecurrenceConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    inbox: InboxConfig = Field(default_factory=InboxConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (init kwargs carry the TOML).
        return (env_settings, init_settings)

    def enabled_accounts(self) -> dict[str, AccountBase]:
        return {name: acc for name, acc in self.accounts.items() if acc.enabled}

    def account(self, name: str) -> AccountBase:
        return self.accounts[name]


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where the configuration is read from: --config, $CROSSPOST_CONFIG, defaults."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("CROSSPOST_CONFIG")
    if env:
        return Path(env)
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    return DEFAULT_CONFIG_PATHS[0]


def load_settings(path: Path) -> Settings:
    """Read and validate the configuration; any fault is one ConfigError line."""
    try:
        with path.open("rb") as handle:
            # Bounded: a device or a pipe named by mistake must not fill the memory.
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            _("{path}: configuration file not found; pass --config or set CROSSPOST_CONFIG").format(
                path=path
            )
        ) from None
    except OSError as exc:
        raise ConfigError(
            _("{path}: cannot read the configuration: {reason}").format(
                path=path, reason=exc.strerror
            )
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            _("{path}: the file is {size} bytes; a configuration may have at most {limit}").format(
                path=path, size=len(raw), limit=MAX_CONFIG_BYTES
            )
        )
    try:
        # A byte order mark (as some Windows editors write) is not part of the TOML.
        data = tomllib.loads(raw.decode("utf-8").removeprefix("\ufeff"))
    except UnicodeDecodeError:
        raise ConfigError(_("{path}: not UTF-8 text; save it as UTF-8").format(path=path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            _("{path}: not valid TOML: {reason}").format(path=path, reason=str(exc))
        ) from None
    except RecursionError:
        raise ConfigError(
            _("{path}: not valid TOML: {reason}").format(path=path, reason=_("nested too deeply"))
        ) from None
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path, exc)) from None
    except SettingsError as exc:
        # A CROSSPOST_<SECTION> variable holding a table or list that is not JSON.
        raise ConfigError(
            _("environment: {reason}; a table or list must be given as JSON").format(reason=exc)
        ) from None
    _check_references(path, settings)
    return settings


def describe_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line for the first problem: file, dotted key, what is wrong, how to fix it."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    # pydantic puts the platform tag after the account's name: accounts.<name>.<tag>.<key>.
    # Only that position is dropped, so an account named "mastodon" keeps its name.
    if len(loc) > 2 and loc[0] == "accounts" and _is_union_tag(loc[2]):
        del loc[2]
    key = ".".join(str(part) for part in loc)
    kind = error["type"]
    if kind == "missing":
        fix = _("the key is required; add it")
    elif kind == "extra_forbidden":
        fix = _("unknown key; remove it or check its spelling")
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        fix = _("platform must be one of: {platforms}").format(platforms=", ".join(PLATFORMS))
    elif kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        fix = _("must be one of {expected}").format(expected=expected)
    else:
        fix = str(error["msg"]).removeprefix("Value error, ")
    return _("{path}: {key}: {fix}").format(path=path, key=key or _("(top level)"), fix=fix)


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in PLATFORMS


def _check_references(path: Path, settings: Settings) -> None:
    check_policy(path, settings)
    if settings.alerts.to and settings.smtp is None:
        raise ConfigError(
            _(
                "{path}: alerts.to: there is no [smtp] section to send the alerts through; add one"
            ).format(path=path)
        )
    categories = set(settings.site.categories)
    for category, accounts in settings.routing.items():
        if category not in categories:
            raise ConfigError(
                _("{path}: routing.{category}: not a category; known: {known}").format(
                    path=path, category=category, known=", ".join(sorted(categories))
                )
            )
        for target in accounts:
            if target not in settings.accounts:
                raise ConfigError(
                    _(
                        "{path}: routing.{category}: unknown account {account!r}; known: {known}"
                    ).format(
                        path=path,
                        category=category,
                        account=target,
                        known=", ".join(sorted(settings.accounts)),
                    )
                )
    for name, configured in settings.accounts.items():
        account: AccountBase = configured
        if not account.enabled:
            continue
        # Secrets are checked where they are needed (the daemon, accounts check):
        # editors run the CLI without access to the tokens.
        if (
            account.base_url is None
            and account.default_base_url is None
            and account.platform in ("mastodon",)
        ):
            raise ConfigError(
                _(
                    "{path}: accounts.{account}.base_url: required for Mastodon; add "
                    'base_url = "https://your.instance"'
                ).format(path=path, account=name)
            )
