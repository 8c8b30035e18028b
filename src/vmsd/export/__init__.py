"""Evidence export: signed bundles verifiable offline."""
