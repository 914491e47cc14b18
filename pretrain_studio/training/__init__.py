"""Training recipes (one function per method) and the registry callback they share."""
