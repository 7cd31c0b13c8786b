"""The wire protocol's numbers: its version and every size and range limit a frame obeys.

Decides: the protocol version this side speaks and the limits on frames, ids, text, nesting and
counts that ``docs/protocol.md`` promises. Must never: check a value itself (``checks`` and the
messages do) or hold anything but constants.
"""

from __future__ import annotations

from hub.reference import text

PROTOCOL_VERSION = 1
"""The protocol version this module speaks; every body carries it as ``v``."""
MAX_FRAME_BYTES = 1 << 20
"""Largest frame (one msgpack body) accepted or produced: 1 MiB. Larger ones are refused with H3."""
MAX_REQUEST_ID_CHARS = 64
"""Longest request id."""
MAX_SIGNATURE_BYTES = 512
"""Longest signature over a critical command."""
MAX_VALUE_DEPTH = 16
"""Deepest nesting of maps and lists in params, body and data; the map itself is level 1."""
MAX_ACK_IDS = 1000
"""Most delivery ids one DeliveryAck may carry."""
MAX_IN_FLIGHT = 10_000
"""Largest ``max_in_flight`` a Hello may ask for."""
MAX_REASON_CHARS = text.MAX_REASON_CHARS
"""Longest reason text (``hub.reference.text`` bounds every reason the hub builds)."""
MAX_DELIVERY_ID = 2**63 - 1
"""Largest delivery id (and pending count): a signed 64-bit integer."""
MAX_INSTANT = 253_402_300_799.0
"""Latest time a message may carry: 9999-12-31T23:59:59Z, in seconds since the Unix epoch."""
MAX_RETRY_AFTER_S = 86_400.0
"""Longest 'retry after' an H8 busy refusal may ask for: one day."""
MAX_ARRAY_ITEMS = 131_072
"""Most items in any one msgpack array of a received frame."""
MAX_MAP_ITEMS = 32_768
"""Most entries in any one msgpack map of a received frame."""
MAX_CONTAINERS = 65_536
"""Most maps and arrays, all levels together, in one received frame."""
FINGERPRINT_BYTES = 32
"""Length of a request fingerprint."""
