"""Settings: embedded defaults, validation that names the variable, and nothing else read."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import DEFAULT_ROLES, ROLES, SettingsError, load_settings, parse_roles


def test_defaults_give_the_embedded_mode(tmp_path: Path) -> None:
    s = load_settings({"TIMBRADO_DATA_DIR": str(tmp_path / "var")})
    assert s.data_dir == (tmp_path / "var").resolve()
    assert s.database_url == f"sqlite+aiosqlite:///{(tmp_path / 'var' / 'timbrado.db').resolve()}"
    assert s.is_sqlite
    assert s.roles == DEFAULT_ROLES
    assert s.inbox == f"maildir:{s.data_dir / 'inbox'}"
    assert not s.slack_enabled
    assert s.smtp_url == ""
    assert s.base_url == "http://127.0.0.1:8080"


def test_postgres_urls_are_normalised_to_the_async_driver(tmp_path: Path) -> None:
    s = load_settings({"TIMBRADO_DATA_DIR": str(tmp_path), "TIMBRADO_DATABASE_URL": "postgresql://u@db:5432/timbrado"})
    assert s.database_url == "postgresql+asyncpg://u@db:5432/timbrado"
    assert not s.is_sqlite


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"TIMBRADO_DATABASE_URL": "mysql://x@y/z"}, "TIMBRADO_DATABASE_URL", "no soportado"),
        ({"TIMBRADO_DATABASE_URL": "postgresql:///"}, "TIMBRADO_DATABASE_URL", "falta"),
        ({"TIMBRADO_DATABASE_URL": "not a url"}, "TIMBRADO_DATABASE_URL", "no soportado"),
        ({"TIMBRADO_DATABASE_URL": "sqlite:///"}, "TIMBRADO_DATABASE_URL", "ruta"),
        ({"TIMBRADO_ROLES": "api,mailman"}, "TIMBRADO_ROLES", "rol desconocido 'mailman'"),
        ({"TIMBRADO_ROLES": " , "}, "TIMBRADO_ROLES", "vacía"),
        ({"TIMBRADO_HTTP_PORT": "80a"}, "TIMBRADO_HTTP_PORT", "entero"),
        ({"TIMBRADO_HTTP_PORT": "70000"}, "TIMBRADO_HTTP_PORT", "entre 0 y 65535"),
        ({"TIMBRADO_LOG_FORMAT": "xml"}, "TIMBRADO_LOG_FORMAT", "valores válidos"),
        ({"TIMBRADO_WORKER_CONCURRENCY": "0"}, "TIMBRADO_WORKER_CONCURRENCY", "entre 1"),
        ({"TIMBRADO_PUBLIC_URL": "ftp://x"}, "TIMBRADO_PUBLIC_URL", "http"),
    ],
)
def test_bad_values_name_the_variable_and_give_an_example(
    tmp_path: Path, env: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"TIMBRADO_DATA_DIR": str(tmp_path), **env})
    message = str(info.value)
    assert message.startswith(variable + ":")
    assert fragment in message
    assert "ejemplo:" in message
    assert "\n" not in message


def test_unwritable_data_dir_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SettingsError) as info:
        load_settings({"TIMBRADO_DATA_DIR": str(blocker / "var")})
    assert str(info.value).startswith("TIMBRADO_DATA_DIR:")


def test_roles_accept_all_and_keep_a_stable_order() -> None:
    assert parse_roles("all") == ROLES
    assert parse_roles("worker, API") == ("api", "worker")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"TIMBRADO_DATA_DIR": str(tmp_path), **{f"TIMBRADO_{k}": v for k, v in extra.items()}}


def test_sat_test_ca_follows_the_pac_unless_configured(tmp_path: Path) -> None:
    assert load_settings(_env(tmp_path)).sat_sandbox  # embedded: sandbox PAC
    production = _env(tmp_path, PAC="finkok", PAC_USER="u", PAC_PASSWORD="p")
    assert not load_settings(production).sat_sandbox
    assert load_settings({**production, "TIMBRADO_PAC_TEST_ENVIRONMENT": "true"}).sat_sandbox
    assert not load_settings(_env(tmp_path, SAT_SANDBOX="false")).sat_sandbox


def test_sat_test_ca_is_refused_with_a_production_pac(tmp_path: Path) -> None:
    env = _env(tmp_path, PAC="sw", PAC_TOKEN="t", SAT_SANDBOX="true")
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert "TIMBRADO_SAT_SANDBOX" in str(info.value)
    assert "PAC de producción 'sw'" in str(info.value)
