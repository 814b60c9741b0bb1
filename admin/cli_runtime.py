"""How every CLI command runs: one container, a current schema, and errors as one clear line."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, OperationalError

from admin.container import Container, build_container
from admin.serve import StartupError, prepare_database
from core.errors import DomainError
from core.settings import Settings

log = logging.getLogger("timbrado.cli")
EXIT_USAGE = 2


def db_error_message(exc: Exception) -> str:
    """One line in Spanish for a database error; a busy embedded database says what to do."""
    detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if "database is locked" in detail:
        return (
            "La base de datos está ocupada: otro proceso (¿el servidor?) la tuvo bloqueada más de 30 s. "
            "Inténtelo de nuevo en un momento."
        )
    return f"Error de la base de datos: {type(exc).__name__}: {detail}"


def os_error_message(exc: OSError) -> str:
    """One line in Spanish for a file or network error (the file named when there is one)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename:
        return f"No se pudo usar el archivo {exc.filename}: {reason}"
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"No se pudo conectar (¿la base de datos o el servidor están disponibles?): {reason}"
    return f"Error del sistema: {reason}"


def run_with_container(
    settings: Settings, fn: Callable[[Container], Awaitable[int]], *, ensure_schema: bool = True
) -> int:
    async def main() -> int:
        container = build_container(settings)
        try:
            if ensure_schema and not await prepare_database(container):
                print("No se pudo conectar con la base de datos; revise TIMBRADO_DATABASE_URL.", file=sys.stderr)
                return 1
            return await fn(container)
        except StartupError as exc:
            print(f"No se puede continuar: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except DomainError as exc:
            print(exc.message, file=sys.stderr)
            return 1
        except (OperationalError, DBAPIError) as exc:
            log.debug("database error", exc_info=True)
            print(db_error_message(exc), file=sys.stderr)
            return 1
        except OSError as exc:
            log.debug("system error", exc_info=True)
            print(os_error_message(exc), file=sys.stderr)
            return 1
        finally:
            await container.aclose()

    return asyncio.run(main())
