"""Sources and loaders by WHAT: explicit registries, filled by each module."""
