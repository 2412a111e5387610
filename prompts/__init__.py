"""Named prompt sets (YAML), shipped inside the wheel as nspzero.prompts."""
