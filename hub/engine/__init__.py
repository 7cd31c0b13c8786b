"""The hub engine: a request's lifecycle from frame to answer, and delivery of responses and
alerts through the outbox. Sans I/O: it returns effects for a driver to apply.
"""
