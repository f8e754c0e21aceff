"""I/O at the edges: Delta tables, raw objects, the SparkSession, configuration."""
