"""Dates: the UTC day of a timestamp and the date-range filter every job uses, once."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from flowspark.core.schema import EVENT_DATE


def utc_date(ts: Column) -> Column:
    """The UTC calendar date of a timestamp, whatever the session time zone."""
    return F.date_from_unix_date(F.floor(F.unix_micros(ts) / 86_400_000_000).cast("int"))


def in_dates(df: DataFrame, date_from: dt.date | None, date_to: dt.date | None, column: str = EVENT_DATE) -> DataFrame:
    """Rows whose `column` (event_date) is in [date_from, date_to] (all rows when both are None)."""
    if date_from is not None:
        df = df.where(F.col(column) >= F.lit(date_from))
    if date_to is not None:
        df = df.where(F.col(column) <= F.lit(date_to))
    return df
