"""Typed settings read once from ``TIMBRADO_*`` environment variables.

Nothing else in the code base reads ``os.environ``: the composition root calls
:func:`load_settings` once and passes the result down.  Every problem is reported
as a :class:`SettingsError` naming the variable, what is wrong and an example.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

PREFIX: Final = "TIMBRADO_"
ROLES: Final = ("api", "mail", "bot", "worker", "scheduler")
DEFAULT_ROLES: Final = ("api", "mail", "worker", "scheduler")
MAIL_AUTH: Final = ("password", "xoauth2")
LOG_FORMATS: Final = ("text", "json")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

T = TypeVar("T")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line for the operator."""

    def __init__(self, variable: str, problem: str, example: str) -> None:
        self.variable = variable
        self.problem = problem
        self.example = example
        super().__init__(f"{variable}: {problem} (ejemplo: {variable}={example})")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service can be configured with.  See README's configuration table."""

    data_dir: Path = Path("var")
    database_url: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str = ""
    roles: tuple[str, ...] = DEFAULT_ROLES
    log_format: str = "text"
    log_level: str = "INFO"
    worker_concurrency: int = 16
    worker_batch_size: int = 64
    job_max_attempts: int = 8
    job_lease_seconds: int = 60
    job_backoff_base_seconds: float = 2.0
    job_backoff_max_seconds: float = 3600.0
    max_request_bytes: int = 1024 * 1024
    shutdown_grace_seconds: float = 30.0
    job_retention_days: int = 30
    # inbound mail (mail role)
    inbox_url: str = ""
    inbox_password: str = field(default="", repr=False)
    inbox_poll_seconds: float = 60.0
    inbox_idle_seconds: float = 300.0
    inbox_max_message_bytes: int = 30 * 1024 * 1024
    inbox_max_attempts: int = 3
    inbox_processed_folder: str = "Procesados"
    inbox_failed_folder: str = "Fallidos"
    # outgoing mail
    smtp_url: str = ""
    smtp_password: str = field(default="", repr=False)
    mail_from: str = "Soporte Timbrado <soporte@timbrado.local>"
    # OAuth2 (XOAUTH2) for IMAP and SMTP
    mail_auth: str = "password"
    oauth2_token_url: str = ""
    oauth2_client_id: str = ""
    oauth2_client_secret: str = field(default="", repr=False)
    oauth2_refresh_token: str = field(default="", repr=False)
    oauth2_scope: str = ""
    # Slack (bot role / HTTP endpoint); off when no bot token
    slack_bot_token: str = field(default="", repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_channel: str = ""
    slack_allowed_users: tuple[str, ...] = ()
    slack_allowed_usergroup: str = ""
    slack_escalation_usergroup: str = ""
    slack_api_url: str = "https://slack.com/api/"
    # support desk webhook
    ticket_webhook_secret: str = field(default="", repr=False)
    # stamp packages: bank transfer data, review SLA, business calendar, uploads
    bank_beneficiary: str = "Portal de Proveedores, S.A. de C.V."
    bank_name: str = "BBVA México"
    bank_clabe: str = "012180001234567899"
    business_time_zone: str = "America/Mexico_City"
    office_hours: tuple[int, int] = (9, 18)
    extra_holidays: tuple[str, ...] = ()
    review_sla_hours: int = 24
    review_reminder_fraction: float = 0.75
    proof_max_bytes: int = 10 * 1024 * 1024
    # the service provider named in the contract
    provider_name: str = "Portal de Proveedores, S.A. de C.V."
    provider_rfc: str = "PPR010101AB1"
    provider_address: str = "Av. Paseo de la Reforma 222, Juárez, Cuauhtémoc, 06600, Ciudad de México"
    provider_email: str = "contratos@portaldeproveedores.mx"
    # tax credentials
    secret_keys: str = field(default="", repr=False)
    sat_sandbox: bool = True
    sat_ca_dir: str = ""
    # --- stamping (core/stamping): PAC selection and credentials, cancellation policy, deadlines
    pac: str = "sandbox"  # sandbox | finkok | sw
    pac_user: str = ""  # Finkok username / SW user
    pac_password: str = field(default="", repr=False)
    pac_token: str = field(default="", repr=False)  # SW token (instead of user + password)
    pac_url: str = ""  # override of the PAC's base URL (tests, proxies)
    pac_test_environment: bool = False  # the PAC's demo hosts
    pac_timeout_seconds: float = 30.0
    pac_latency_ms: int = 0  # sandbox only: simulated network latency
    cancel_stamp_policy: str = "none"  # none | refund | consume
    invoice_max_bytes: int = 2 * 1024 * 1024
    rep_deadline_warning_days: int = 3
    # --- end stamping
    # --- statements (core/statements): summary e-mails and balance alerts
    statement_frequency: str = "weekly"  # weekly | monthly | off (a vendor may choose its own)
    statement_send_hour: int = 8  # local hour (vendor's time zone) after a period ends
    low_balance_threshold: int = 10  # alert when the available stamps fall below this
    expiry_alert_days: int = 15
    buy_url: str = ""  # link to buy a package in alerts; default: <public url>/paquetes
    # --- end statements

    @property
    def sqlite_path(self) -> Path | None:
        """Path of the SQLite database file, or ``None`` when the database is not SQLite."""
        if not self.database_url.startswith("sqlite"):
            return None
        path = self.database_url.split(":///", 1)[1]
        return Path(path)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token)

    @property
    def inbox(self) -> str:
        """The inbox source URL (``maildir:<path>`` by default)."""
        return self.inbox_url or f"maildir:{self.data_dir / 'inbox'}"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def mail_domain(self) -> str:
        address = self.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] if "@" in address else "timbrado.local"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::") else self.http_host  # noqa: S104
        return f"http://{host}:{self.http_port}"


def _int(name: str, raw: str, *, minimum: int, maximum: int, example: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(name, f"se esperaba un número entero y se recibió {raw!r}", example) from None
    if not minimum <= value <= maximum:
        raise SettingsError(name, f"debe estar entre {minimum} y {maximum}; se recibió {value}", example)
    return value


def _float(name: str, raw: str, *, minimum: float, maximum: float, example: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(name, f"se esperaba un número y se recibió {raw!r}", example) from None
    if not minimum <= value <= maximum:
        raise SettingsError(name, f"debe estar entre {minimum} y {maximum}; se recibió {value}", example)
    return value


def _choice(name: str, raw: str, choices: tuple[str, ...], example: str, *, upper: bool = False) -> str:
    value = raw.strip().upper() if upper else raw.strip().lower()
    if value not in choices:
        raise SettingsError(name, f"valor desconocido {raw!r}; valores válidos: {', '.join(choices)}", example)
    return value


def parse_roles(raw: str, variable: str = PREFIX + "ROLES") -> tuple[str, ...]:
    """Parse a comma-separated role list; ``all`` means every role."""
    parts = [p.strip().lower() for p in raw.split(",") if p.strip()]
    if not parts:
        raise SettingsError(variable, "la lista de roles está vacía", "api,worker")
    if parts == ["all"]:
        return ROLES
    unknown = [p for p in parts if p not in ROLES]
    if unknown:
        raise SettingsError(
            variable,
            f"rol desconocido {unknown[0]!r}; roles válidos: {', '.join(ROLES)}",
            "api,worker",
        )
    return tuple(r for r in ROLES if r in parts)


def _database_url(name: str, raw: str, data_dir: Path) -> str:
    if not raw:
        return f"sqlite+aiosqlite:///{(data_dir / 'timbrado.db').resolve()}"
    example = "postgresql+asyncpg://usuario@localhost:5432/timbrado"
    parts = urlsplit(raw)
    scheme = parts.scheme
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        # Normalise to the async driver we ship.
        raw = "postgresql+asyncpg://" + raw.split("://", 1)[1]
        parts = urlsplit(raw)
        scheme = parts.scheme
    if scheme == "sqlite":
        raw = "sqlite+aiosqlite://" + raw.split("://", 1)[1]
        scheme = "sqlite+aiosqlite"
    if scheme == "sqlite+aiosqlite":
        if not raw.startswith("sqlite+aiosqlite:///") or raw == "sqlite+aiosqlite:///":
            raise SettingsError(name, "una URL de SQLite debe incluir la ruta del archivo", example)
        return raw
    if scheme != "postgresql+asyncpg":
        raise SettingsError(name, f"esquema de base de datos no soportado {scheme or raw!r}", example)
    if not parts.hostname and "host=" not in (parts.query or ""):
        raise SettingsError(name, "falta el servidor en la URL de PostgreSQL", example)
    if not parts.path.strip("/"):
        raise SettingsError(name, "falta el nombre de la base de datos en la URL", example)
    return raw


def _writable_dir(name: str, raw: str) -> Path:
    path = Path(raw).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(name, f"no se pudo crear el directorio {str(path)!r}: {exc.strerror}", "./var") from None
    probe = path / ".write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        raise SettingsError(name, f"el directorio {str(path)!r} no admite escritura", "./var") from None
    return path.resolve()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings from ``environ`` (``os.environ`` by default)."""
    env = dict(os.environ if environ is None else environ)

    def get(key: str, default: str = "") -> str:
        return env.get(PREFIX + key, default)

    def opt(key: str, parse: Callable[[str, str], T], default: T) -> T:
        raw = env.get(PREFIX + key)
        if raw is None or raw.strip() == "":
            return default
        return parse(PREFIX + key, raw)

    data_dir = _writable_dir(PREFIX + "DATA_DIR", get("DATA_DIR", "var"))
    database_url = _database_url(PREFIX + "DATABASE_URL", get("DATABASE_URL").strip(), data_dir)
    d = Settings()
    public_url = get("PUBLIC_URL").strip()
    if public_url and urlsplit(public_url).scheme not in ("http", "https"):
        raise SettingsError(PREFIX + "PUBLIC_URL", "debe empezar con http:// o https://", "https://timbrado.example.mx")
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        http_host=get("HTTP_HOST", d.http_host).strip() or d.http_host,
        http_port=opt("HTTP_PORT", lambda n, r: _int(n, r, minimum=0, maximum=65535, example="8080"), d.http_port),
        public_url=public_url,
        roles=opt("ROLES", lambda n, r: parse_roles(r, n), d.roles),
        log_format=opt("LOG_FORMAT", lambda n, r: _choice(n, r, LOG_FORMATS, "json"), d.log_format),
        log_level=opt("LOG_LEVEL", lambda n, r: _choice(n, r, LOG_LEVELS, "INFO", upper=True), d.log_level),
        worker_concurrency=opt(
            "WORKER_CONCURRENCY",
            lambda n, r: _int(n, r, minimum=1, maximum=1000, example="16"),
            d.worker_concurrency,
        ),
        worker_batch_size=opt(
            "WORKER_BATCH_SIZE",
            lambda n, r: _int(n, r, minimum=1, maximum=10000, example="64"),
            d.worker_batch_size,
        ),
        job_max_attempts=opt(
            "JOB_MAX_ATTEMPTS",
            lambda n, r: _int(n, r, minimum=1, maximum=100, example="8"),
            d.job_max_attempts,
        ),
        job_lease_seconds=opt(
            "JOB_LEASE_SECONDS",
            lambda n, r: _int(n, r, minimum=5, maximum=86400, example="60"),
            d.job_lease_seconds,
        ),
        job_backoff_base_seconds=opt(
            "JOB_BACKOFF_BASE_SECONDS",
            lambda n, r: _float(n, r, minimum=0.0, maximum=3600.0, example="2"),
            d.job_backoff_base_seconds,
        ),
        job_backoff_max_seconds=opt(
            "JOB_BACKOFF_MAX_SECONDS",
            lambda n, r: _float(n, r, minimum=0.0, maximum=86400.0, example="3600"),
            d.job_backoff_max_seconds,
        ),
        max_request_bytes=opt(
            "MAX_REQUEST_BYTES",
            lambda n, r: _int(n, r, minimum=1024, maximum=1024**3, example="1048576"),
            d.max_request_bytes,
        ),
        shutdown_grace_seconds=opt(
            "SHUTDOWN_GRACE_SECONDS",
            lambda n, r: _float(n, r, minimum=0.0, maximum=3600.0, example="30"),
            d.shutdown_grace_seconds,
        ),
        job_retention_days=opt(
            "JOB_RETENTION_DAYS",
            lambda n, r: _int(n, r, minimum=1, maximum=3650, example="30"),
            d.job_retention_days,
        ),
        **_mail_settings(env, d),
        **_orders_settings(env, d),
        **_credential_settings(env, d),
        **_stamping_settings(env, d),
        **_slack_settings(env, d),
        **_statement_settings(env),
    )
    return _with_sat_sandbox(env, settings)


def _with_sat_sandbox(env: Mapping[str, str], settings: Settings) -> Settings:
    """SAT's test CA ("AC UAT") follows the PAC: trusted with the sandbox PAC or a PAC's demo hosts,
    never with a production PAC (there a test certificate would be a forged stamp waiting to happen).
    ``TIMBRADO_SAT_SANDBOX`` may turn it off anywhere, and on only where the PAC is a test one."""
    test_pac = settings.pac == "sandbox" or settings.pac_test_environment
    if PREFIX + "SAT_SANDBOX" not in env or not env[PREFIX + "SAT_SANDBOX"].strip():
        return replace(settings, sat_sandbox=test_pac)
    if settings.sat_sandbox and not test_pac:
        raise SettingsError(
            PREFIX + "SAT_SANDBOX",
            f"el CA de pruebas del SAT no se acepta con el PAC de producción {settings.pac!r} "
            "(use false, o TIMBRADO_PAC_TEST_ENVIRONMENT=true para los servidores de pruebas del PAC)",
            "false",
        )
    return settings


def _statement_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """TIMBRADO_STATEMENT_FREQUENCY, _STATEMENT_SEND_HOUR, _LOW_BALANCE_THRESHOLD, _EXPIRY_ALERT_DAYS, _BUY_URL."""
    out: dict[str, Any] = {}

    def raw(key: str) -> str:
        return env.get(PREFIX + key, "").strip()

    if raw("STATEMENT_FREQUENCY"):
        out["statement_frequency"] = _choice(
            PREFIX + "STATEMENT_FREQUENCY", raw("STATEMENT_FREQUENCY"), ("weekly", "monthly", "off"), "weekly"
        )
    for key, attr, lo, hi, example in (
        ("STATEMENT_SEND_HOUR", "statement_send_hour", 0, 23, "8"),
        ("LOW_BALANCE_THRESHOLD", "low_balance_threshold", 0, 10_000_000, "10"),
        ("EXPIRY_ALERT_DAYS", "expiry_alert_days", 1, 365, "15"),
    ):
        if raw(key):
            out[attr] = _int(PREFIX + key, raw(key), minimum=lo, maximum=hi, example=example)
    if raw("BUY_URL"):
        out["buy_url"] = _url(
            PREFIX + "BUY_URL", raw("BUY_URL"), ("http", "https"), "https://portal.example.mx/paquetes"
        )
    return out


def _url(name: str, raw: str, schemes: tuple[str, ...], example: str) -> str:
    value = raw.strip()
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in schemes:
        raise SettingsError(name, f"esquema no soportado {scheme or value!r}; use {', '.join(schemes)}", example)
    if scheme in ("imap", "imaps", "smtp", "smtps") and not urlsplit(value).hostname:
        raise SettingsError(name, "falta el servidor en la URL", example)
    if scheme == "maildir" and not value.split(":", 1)[1]:
        raise SettingsError(name, "falta la ruta del Maildir", example)
    return value


def _mail_settings(env: Mapping[str, str], d: Settings) -> dict[str, Any]:
    def raw(key: str) -> str:
        return env.get(PREFIX + key, "").strip()

    out: dict[str, Any] = {}
    if raw("INBOX_URL"):
        out["inbox_url"] = _url(
            PREFIX + "INBOX_URL",
            raw("INBOX_URL"),
            ("maildir", "imap", "imaps"),
            "imaps://soporte%40ejemplo.mx@imap.ejemplo.mx/INBOX",
        )
    if raw("SMTP_URL"):
        out["smtp_url"] = _url(
            PREFIX + "SMTP_URL", raw("SMTP_URL"), ("smtp", "smtps"), "smtp://usuario@smtp.ejemplo.mx:587"
        )
    ints = {
        "INBOX_MAX_MESSAGE_BYTES": ("inbox_max_message_bytes", 1024, 200 * 1024 * 1024, "31457280"),
        "INBOX_MAX_ATTEMPTS": ("inbox_max_attempts", 1, 100, "3"),
    }
    for key, (attr, lo, hi, example) in ints.items():
        if raw(key):
            out[attr] = _int(PREFIX + key, raw(key), minimum=lo, maximum=hi, example=example)
    floats = {
        "INBOX_POLL_SECONDS": ("inbox_poll_seconds", 0.05, 86400.0, "60"),
        "INBOX_IDLE_SECONDS": ("inbox_idle_seconds", 1.0, 1740.0, "300"),
    }
    for key, (attr, flo, fhi, example) in floats.items():
        if raw(key):
            out[attr] = _float(PREFIX + key, raw(key), minimum=flo, maximum=fhi, example=example)
    for key, attr in (
        ("INBOX_PASSWORD", "inbox_password"),
        ("SMTP_PASSWORD", "smtp_password"),
        ("INBOX_PROCESSED_FOLDER", "inbox_processed_folder"),
        ("INBOX_FAILED_FOLDER", "inbox_failed_folder"),
        ("OAUTH2_TOKEN_URL", "oauth2_token_url"),
        ("OAUTH2_CLIENT_ID", "oauth2_client_id"),
        ("OAUTH2_CLIENT_SECRET", "oauth2_client_secret"),
        ("OAUTH2_REFRESH_TOKEN", "oauth2_refresh_token"),
        ("OAUTH2_SCOPE", "oauth2_scope"),
        ("TICKET_WEBHOOK_SECRET", "ticket_webhook_secret"),
    ):
        if raw(key):
            out[attr] = raw(key)
    if raw("MAIL_FROM"):
        value = raw("MAIL_FROM")
        if "@" not in value or "\n" in value or "\r" in value:
            raise SettingsError(
                PREFIX + "MAIL_FROM", "se esperaba una dirección de correo", "Soporte <soporte@ejemplo.mx>"
            )
        out["mail_from"] = value
    if raw("MAIL_AUTH"):
        out["mail_auth"] = _choice(PREFIX + "MAIL_AUTH", raw("MAIL_AUTH"), MAIL_AUTH, "xoauth2")
    if out.get("mail_auth") == "xoauth2":
        for key in ("OAUTH2_TOKEN_URL", "OAUTH2_CLIENT_ID", "OAUTH2_REFRESH_TOKEN"):
            if not raw(key):
                raise SettingsError(PREFIX + key, "es obligatorio con TIMBRADO_MAIL_AUTH=xoauth2", "…")
    return out


def _slack_settings(env: Mapping[str, str], d: Settings) -> dict[str, Any]:
    def raw(key: str) -> str:
        return env.get(PREFIX + key, "").strip()

    out: dict[str, Any] = {}
    token = raw("SLACK_BOT_TOKEN")
    if not token:
        return out
    if not token.startswith("xoxb-"):
        raise SettingsError(PREFIX + "SLACK_BOT_TOKEN", "debe ser un token de bot (empieza con xoxb-)", "xoxb-…")
    out["slack_bot_token"] = token
    if not raw("SLACK_SIGNING_SECRET") and not raw("SLACK_APP_TOKEN"):
        raise SettingsError(
            PREFIX + "SLACK_SIGNING_SECRET",
            "es obligatorio con Slack por HTTP (o defina TIMBRADO_SLACK_APP_TOKEN)",
            "8f14e45f…",
        )
    if raw("SLACK_APP_TOKEN") and not raw("SLACK_APP_TOKEN").startswith("xapp-"):
        raise SettingsError(PREFIX + "SLACK_APP_TOKEN", "debe ser un token de aplicación (empieza con xapp-)", "xapp-…")
    if not raw("SLACK_CHANNEL"):
        raise SettingsError(PREFIX + "SLACK_CHANNEL", "indique el canal de soporte (id)", "C0123456789")
    users = tuple(u.strip() for u in raw("SLACK_ALLOWED_USERS").split(",") if u.strip())
    if not users and not raw("SLACK_ALLOWED_USERGROUP"):
        raise SettingsError(
            PREFIX + "SLACK_ALLOWED_USERS",
            "indique quién puede decidir (usuarios o TIMBRADO_SLACK_ALLOWED_USERGROUP)",
            "U012AB3CD,U045EF6GH",
        )
    out.update(
        slack_signing_secret=raw("SLACK_SIGNING_SECRET"),
        slack_app_token=raw("SLACK_APP_TOKEN"),
        slack_channel=raw("SLACK_CHANNEL"),
        slack_allowed_users=users,
        slack_allowed_usergroup=raw("SLACK_ALLOWED_USERGROUP"),
        slack_escalation_usergroup=raw("SLACK_ESCALATION_USERGROUP"),
    )
    if raw("SLACK_API_URL"):
        out["slack_api_url"] = _url(
            PREFIX + "SLACK_API_URL", raw("SLACK_API_URL"), ("http", "https"), "https://slack.com/api/"
        )
    return out


def clabe_check_digit(first17: str) -> int:
    weights = (3, 7, 1)
    total = sum((int(ch) * weights[i % 3]) % 10 for i, ch in enumerate(first17))
    return (10 - total % 10) % 10


def _orders_settings(env: Mapping[str, str], d: Settings) -> dict[str, Any]:
    def raw(key: str) -> str:
        return env.get(PREFIX + key, "").strip()

    out: dict[str, Any] = {}
    for key, attr in (("BANK_BENEFICIARY", "bank_beneficiary"), ("BANK_NAME", "bank_name")):
        if raw(key):
            out[attr] = " ".join(raw(key).split())[:200]
    if raw("BANK_CLABE"):
        clabe = raw("BANK_CLABE").replace(" ", "")
        if len(clabe) != 18 or not clabe.isdigit() or clabe_check_digit(clabe[:17]) != int(clabe[17]):
            raise SettingsError(
                PREFIX + "BANK_CLABE",
                "la CLABE debe tener 18 dígitos con dígito verificador válido",
                "012180001234567899",
            )
        out["bank_clabe"] = clabe
    if raw("BUSINESS_TIME_ZONE"):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(raw("BUSINESS_TIME_ZONE"))
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                PREFIX + "BUSINESS_TIME_ZONE", "zona horaria desconocida", "America/Mexico_City"
            ) from None
        out["business_time_zone"] = raw("BUSINESS_TIME_ZONE")
    if raw("OFFICE_HOURS"):
        example = "09-18"
        parts = raw("OFFICE_HOURS").replace(":00", "").split("-")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise SettingsError(PREFIX + "OFFICE_HOURS", "use el formato HH-HH", example)
        start, end = (int(p) for p in parts)
        if not 0 <= start < end <= 24:
            raise SettingsError(
                PREFIX + "OFFICE_HOURS", "la hora de inicio debe ser menor que la de fin (0-24)", example
            )
        out["office_hours"] = (start, end)
    if raw("EXTRA_HOLIDAYS"):
        from datetime import date

        days = []
        for item in raw("EXTRA_HOLIDAYS").split(","):
            try:
                days.append(date.fromisoformat(item.strip()).isoformat())
            except ValueError:
                raise SettingsError(
                    PREFIX + "EXTRA_HOLIDAYS", f"fecha inválida {item.strip()!r}", "2026-12-24,2026-12-31"
                ) from None
        out["extra_holidays"] = tuple(days)
    if raw("REVIEW_SLA_HOURS"):
        out["review_sla_hours"] = _int(
            PREFIX + "REVIEW_SLA_HOURS", raw("REVIEW_SLA_HOURS"), minimum=1, maximum=720, example="24"
        )
    if raw("REVIEW_REMINDER_FRACTION"):
        out["review_reminder_fraction"] = _float(
            PREFIX + "REVIEW_REMINDER_FRACTION",
            raw("REVIEW_REMINDER_FRACTION"),
            minimum=0.05,
            maximum=0.99,
            example="0.75",
        )
    if raw("PROOF_MAX_BYTES"):
        out["proof_max_bytes"] = _int(
            PREFIX + "PROOF_MAX_BYTES",
            raw("PROOF_MAX_BYTES"),
            minimum=1024,
            maximum=100 * 1024 * 1024,
            example="10485760",
        )
    return out


def _credential_settings(env: Mapping[str, str], d: Settings) -> dict[str, Any]:
    def raw(key: str) -> str:
        return env.get(PREFIX + key, "").strip()

    out: dict[str, Any] = {}
    for key, attr in (
        ("PROVIDER_NAME", "provider_name"),
        ("PROVIDER_RFC", "provider_rfc"),
        ("PROVIDER_ADDRESS", "provider_address"),
        ("PROVIDER_EMAIL", "provider_email"),
    ):
        if raw(key):
            out[attr] = " ".join(raw(key).split())[:300]
    if raw("SECRET_KEYS"):
        from core.secrets.errors import SecretError
        from core.secrets.keys import Keyring

        try:
            Keyring.parse(raw("SECRET_KEYS"))
        except SecretError as exc:
            raise SettingsError(PREFIX + "SECRET_KEYS", exc.message, "k2:<44 caracteres base64>,k1:<...>") from None
        out["secret_keys"] = raw("SECRET_KEYS")
    if raw("SAT_SANDBOX"):
        value = raw("SAT_SANDBOX").lower()
        if value not in ("true", "false", "1", "0", "yes", "no", "si", "sí"):
            raise SettingsError(PREFIX + "SAT_SANDBOX", "use true o false", "false")
        out["sat_sandbox"] = value in ("true", "1", "yes", "si", "sí")
    if raw("SAT_CA_DIR"):
        path = Path(raw("SAT_CA_DIR")).expanduser()
        if not path.is_dir():
            raise SettingsError(PREFIX + "SAT_CA_DIR", f"no existe el directorio {str(path)!r}", "/etc/timbrado/sat-ca")
        out["sat_ca_dir"] = str(path)
    return out


# --- stamping (core/stamping)
PAC_NAMES = ("sandbox", "finkok", "sw")
CANCEL_STAMP_POLICIES = ("none", "refund", "consume")


def _stamping_settings(env: Mapping[str, str], d: Settings) -> dict[str, Any]:
    def raw(key: str) -> str:
        return env.get(PREFIX + key, "").strip()

    out: dict[str, Any] = {}
    if raw("PAC"):
        out["pac"] = _choice(PREFIX + "PAC", raw("PAC").lower(), PAC_NAMES, "sandbox")
    for key, attr in (("PAC_USER", "pac_user"), ("PAC_PASSWORD", "pac_password"), ("PAC_TOKEN", "pac_token")):
        if raw(key):
            out[attr] = raw(key)
    if raw("PAC_URL"):
        out["pac_url"] = _url(
            PREFIX + "PAC_URL", raw("PAC_URL"), ("http", "https"), "https://demo-facturacion.finkok.com"
        )
    if raw("PAC_TEST_ENVIRONMENT"):
        value = raw("PAC_TEST_ENVIRONMENT").lower()
        if value not in ("true", "false", "1", "0", "yes", "no", "si", "sí"):
            raise SettingsError(PREFIX + "PAC_TEST_ENVIRONMENT", "use true o false", "true")
        out["pac_test_environment"] = value in ("true", "1", "yes", "si", "sí")
    if raw("PAC_TIMEOUT_SECONDS"):
        out["pac_timeout_seconds"] = _float(
            PREFIX + "PAC_TIMEOUT_SECONDS", raw("PAC_TIMEOUT_SECONDS"), minimum=1.0, maximum=600.0, example="30"
        )
    if raw("PAC_LATENCY_MS"):
        out["pac_latency_ms"] = _int(
            PREFIX + "PAC_LATENCY_MS", raw("PAC_LATENCY_MS"), minimum=0, maximum=60000, example="150"
        )
    if raw("CANCEL_STAMP_POLICY"):
        out["cancel_stamp_policy"] = _choice(
            PREFIX + "CANCEL_STAMP_POLICY", raw("CANCEL_STAMP_POLICY").lower(), CANCEL_STAMP_POLICIES, "none"
        )
    if raw("INVOICE_MAX_BYTES"):
        out["invoice_max_bytes"] = _int(
            PREFIX + "INVOICE_MAX_BYTES", raw("INVOICE_MAX_BYTES"), minimum=1024, maximum=50 * 1024 * 1024,
            example="2097152",
        )  # fmt: skip
    if raw("REP_DEADLINE_WARNING_DAYS"):
        out["rep_deadline_warning_days"] = _int(
            PREFIX + "REP_DEADLINE_WARNING_DAYS", raw("REP_DEADLINE_WARNING_DAYS"), minimum=0, maximum=31, example="3"
        )
    pac = out.get("pac", d.pac)
    if pac == "finkok" and not (out.get("pac_user") and out.get("pac_password")):
        raise SettingsError(PREFIX + "PAC_USER", "Finkok necesita TIMBRADO_PAC_USER y TIMBRADO_PAC_PASSWORD", "usuario")
    if pac == "sw" and not (out.get("pac_token") or (out.get("pac_user") and out.get("pac_password"))):
        raise SettingsError(
            PREFIX + "PAC_TOKEN", "SW necesita TIMBRADO_PAC_TOKEN o usuario y contraseña", "T2lYQ0t4..."
        )
    return out
