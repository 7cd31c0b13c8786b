"""Per-request policies: access control, traffic management, anomaly thresholds, security
monitoring, alert routing and SLA arithmetic. Each decides one question about one request or
message; none keeps a request's lifecycle (the engine does).
"""
