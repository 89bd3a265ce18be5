"""File-format helpers shared by the loaders (restricted unpickling, images)."""
