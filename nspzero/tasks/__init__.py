"""Task types and the YAML task registry."""
