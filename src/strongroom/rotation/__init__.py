"""Rotation: the engine (four steps, retries, schedules) and the function runtime."""
