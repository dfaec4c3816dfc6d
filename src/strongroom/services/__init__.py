"""One package per AWS service: typed request in, domain call, typed response out."""
