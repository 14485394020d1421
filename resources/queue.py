"""The commerce subscription queue (RabbitMQ over AMQP): read a bounded batch, ack only what is stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pydantic import Field

URL_SETTING = "COMMERCE_SUBSCRIPTION_AMQP_URL"
QUEUE_SETTING = "COMMERCE_SUBSCRIPTION_QUEUE"
DEFAULT_QUEUE = "commerce-messages"


def masked_url(url: str) -> str:
    """`url` with its password replaced by ***, for errors and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class QueueUnavailableError(RuntimeError):
    """The broker cannot be reached or refused us; the message names the setting, never the password."""


@dataclass(frozen=True)
class Delivery:
    """One message read from the queue and not yet acked."""

    delivery_tag: int
    body: bytes
    redelivered: bool


class Batch:
    """Deliveries read in one go; `ack()` acknowledges all of them (call it only once they are stored)."""

    def __init__(self, channel: BlockingChannel, deliveries: list[Delivery]):
        self._channel = channel
        self.deliveries = deliveries

    def ack(self) -> None:
        if self.deliveries:
            self._channel.basic_ack(delivery_tag=self.deliveries[-1].delivery_tag, multiple=True)


class CommerceQueueResource(dg.ConfigurableResource):
    """The queue the commerce subscription publishes its change messages to (a durable RabbitMQ queue)."""

    url: str = Field(
        default="",
        description=f"AMQP URL, e.g. amqp://user:password@host:5672/%2F ({URL_SETTING}); empty when not used.",
    )
    queue: str = Field(default=DEFAULT_QUEUE, description=f"Queue name ({QUEUE_SETTING}).")
    max_messages: int = Field(default=1000, ge=1, description="At most this many messages are read per batch.")
    max_seconds: float = Field(default=5.0, gt=0, description="A batch stops reading after this many seconds.")
    idle_seconds: float = Field(default=0.5, gt=0, description="A batch ends when the queue is quiet this long.")
    connect_timeout_s: float = 5.0

    @property
    def configured(self) -> bool:
        return bool(self.url)

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Read up to `max_messages` messages (for at most `max_seconds`) without acking them.

        Whatever is not acked when the block ends, by an exception or a crash, goes back to the
        queue when the connection closes and is delivered again.
        """
        with self._channel() as channel:
            channel.basic_qos(prefetch_count=self.max_messages)
            deliveries: list[Delivery] = []
            deadline = time.monotonic() + self.max_seconds
            for method, _properties, body in channel.consume(self.queue, inactivity_timeout=self.idle_seconds):
                if method is None:
                    break
                deliveries.append(Delivery(method.delivery_tag, body, bool(method.redelivered)))
                if len(deliveries) >= self.max_messages or time.monotonic() >= deadline:
                    break
            channel.cancel()  # messages pushed but not read go straight back to the queue
            yield Batch(channel, deliveries)

    @contextmanager
    def _channel(self) -> Iterator[BlockingChannel]:
        if not self.url:
            raise QueueUnavailableError(f"{URL_SETTING} is not set, so there is no commerce subscription queue")
        try:
            parameters = pika.URLParameters(self.url)
        except (ValueError, TypeError):
            raise QueueUnavailableError(f"{URL_SETTING} is not a valid AMQP URL: {masked_url(self.url)}") from None
        parameters.socket_timeout = parameters.blocked_connection_timeout = self.connect_timeout_s
        try:
            connection = pika.BlockingConnection(parameters)
        except pika.exceptions.AMQPError as exc:
            raise QueueUnavailableError(
                f"cannot reach the message broker at {masked_url(self.url)} ({URL_SETTING}): "
                f"{type(exc).__name__} {_reason(exc)}"
            ) from None
        try:
            channel = connection.channel()
            channel.queue_declare(self.queue, durable=True)
            yield channel
        finally:
            if connection.is_open:
                connection.close()


def _reason(exc: Exception) -> str:
    """pika's errors can carry the connection parameters; name only the kind and the broker's reply."""
    text = str(exc)
    return "" if "://" in text or "password" in text.lower() else text
