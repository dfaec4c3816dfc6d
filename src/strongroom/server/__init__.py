"""The ASGI server and its request pipeline."""
