"""Reference data and formats: codes, roles, the service catalogue, parties, meter point
numbers, UK time, vendor-neutral device messages, top-up codes and service parameter schemas.
Decides what the domain's names and numbers mean; must never hold state that changes while
the hub runs.
"""
