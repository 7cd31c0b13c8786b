"""The registers the hub reads and the inventory it keeps: supplier registration, agent
appointments, consents, fleet record formats, and the device inventory's lifecycle.
Must never decide access (policies do) or touch a file (drivers read files).
"""
