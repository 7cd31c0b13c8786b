"""meters_sim package."""
