"""The Python client SDK for service users: one DEALER connection to the hub with CURVE, Hello
on every handshake and de-duplication of redeliveries. Imports nothing of the hub's runtime.
"""
