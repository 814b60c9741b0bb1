"""Imports every model module so ``Base.metadata`` is complete (migrations, tests)."""

from core.audit import models as audit_models
from core.auth import tokens as token_models
from core.clients import models as client_models
from core.db.base import Base
from core.enablement import models as enablement_models
from core.inbox import models as inbox_models
from core.jobs import models as job_models
from core.notifications import models as notification_models
from core.orders import models as order_models
from core.pac import sandbox_db as sandbox_pac_models  # noqa: F401  (the sandbox PAC's store)
from core.stamping import models as stamping_models
from core.stamps import models as stamp_models
from core.statements import models as statement_models  # noqa: F401  (statements: issue 7)
from core.uploads import models as upload_models
from core.vendors import models as vendor_models

__all__ = [
    "Base",
    "audit_models",
    "client_models",
    "enablement_models",
    "inbox_models",
    "job_models",
    "notification_models",
    "order_models",
    "stamp_models",
    "stamping_models",
    "token_models",
    "upload_models",
    "vendor_models",
]
