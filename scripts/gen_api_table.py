"""Print the endpoint table of docs/api.md from the OpenAPI document: python scripts/gen_api_table.py"""

import asyncio
import tempfile
from pathlib import Path

from admin.app import create_app
from admin.container import build_container
from admin.openapi import build_openapi
from core.settings import Settings


async def main():
    tmp = tempfile.mkdtemp()
    c = build_container(Settings(data_dir=Path(tmp), database_url=f"sqlite+aiosqlite:///{tmp}/x.db"))
    doc = build_openapi(create_app(c), title="t", version="1")
    rows = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            tag = (op.get("tags") or ["General"])[0]
            roles = ", ".join(op.get("x-roles", [])) or "público"
            rows.setdefault(tag, []).append(f"| `{method.upper()} {path}` | {roles} | {op['summary']} |")
    for tag in sorted(rows):
        print(f"\n### {tag}\n\n| endpoint | roles | purpose |\n|---|---|---|")
        print("\n".join(rows[tag]))
    await c.aclose()


asyncio.run(main())
