"""flowspark: AWS VPC Flow Logs to Delta Lake on PySpark."""

__version__ = "0.1.0"
