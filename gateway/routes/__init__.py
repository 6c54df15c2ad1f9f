"""HTTP glue only: each router translates HTTP to calls on the lifespan's objects."""
