"""The ``cosem`` head-end: DLMS/COSEM-style APDUs with OBIS-addressed objects.

Re-exports only. The frames, data types and keys live in ``headend``; the COSEM object each
service addresses in ``objects``.
"""

from hub.headends.cosem.headend import (
    MAC_BYTES,
    MIN_MASTER_KEY_BYTES,
    NAME,
    SIMULATOR_MASTER_KEY,
    CosemHeadEnd,
    derive_device_key,
)
from hub.headends.cosem.objects import ALERT_OBJECT, Access, CosemObject, service_object

__all__ = [
    "ALERT_OBJECT",
    "MAC_BYTES",
    "MIN_MASTER_KEY_BYTES",
    "NAME",
    "SIMULATOR_MASTER_KEY",
    "Access",
    "CosemHeadEnd",
    "CosemObject",
    "derive_device_key",
    "service_object",
]
