"""Running a model: resolving names to weights (hub ids, folders, the built-in `tiny` model), rendering chat
prompts, batched generation, the predict loop, and merging an adapter into its base model."""
