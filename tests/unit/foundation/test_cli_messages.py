"""The CLI's one-line messages for database and system errors."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import OperationalError

from admin.cli_runtime import db_error_message, os_error_message


def test_a_locked_embedded_database_says_to_try_again() -> None:
    exc = OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
    message = db_error_message(exc)
    assert "ocupada" in message and "de nuevo" in message and "\n" not in message


def test_other_database_errors_name_the_error() -> None:
    exc = OperationalError("SELECT 1", None, sqlite3.OperationalError("no such table: jobs"))
    assert db_error_message(exc).startswith("Error de la base de datos: OperationalError: ")
    assert "no such table: jobs" in db_error_message(exc)


def test_file_errors_name_the_file_and_network_errors_say_so() -> None:
    missing = FileNotFoundError(2, "No such file or directory", "/srv/salida/estado.csv")
    assert os_error_message(missing) == "No se pudo usar el archivo /srv/salida/estado.csv: No such file or directory"
    refused = ConnectionRefusedError(111, "Connection refused")
    assert os_error_message(refused).startswith("No se pudo conectar")
    assert os_error_message(OSError("raro")) == "Error del sistema: raro"
