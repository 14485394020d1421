from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from resources.http import parse_retry_after


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), ("0", 0.0), (None, None), ("soon", None)])
def test_retry_after_in_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_as_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= parse_retry_after(format_datetime(when, usegmt=True)) <= 30


def test_retry_after_in_the_past_means_now():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
