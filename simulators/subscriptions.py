"""Commerce subscriptions with a message-queue destination (commercetools' RabbitMQ-style destination).

:class:`AmqpSubscription` is called with each batch of new commerce messages and publishes every
message to a durable RabbitMQ queue: persistent, JSON, the same document ``/messages`` serves, the
message id as the AMQP ``message_id``. Publishing waits for the broker's confirm, so a message is in
the queue when the change that made it returns. A lost connection is opened again once per batch.

Switched on by ``COMMERCE_SUBSCRIPTION_AMQP_URL`` (queue ``COMMERCE_SUBSCRIPTION_QUEUE``, default
``commerce-messages``) when the server starts, or at run time by ``POST /_admin/subscription``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pika
import pika.exceptions

URL_VARIABLE = "COMMERCE_SUBSCRIPTION_AMQP_URL"
QUEUE_VARIABLE = "COMMERCE_SUBSCRIPTION_QUEUE"
DEFAULT_QUEUE = "commerce-messages"


def masked(url: str) -> str:
    """`url` without its password, for logs and admin replies."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class SubscriptionError(Exception):
    """The destination cannot be reached; the message never shows the password."""


class AmqpSubscription:
    """Publishes commerce messages to one RabbitMQ queue."""

    def __init__(self, url: str, queue: str = DEFAULT_QUEUE) -> None:
        self.url = url
        self.queue = queue
        self.published = 0
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        with self._lock:
            self._connect()  # fail now, at configuration, rather than on the first change

    @classmethod
    def from_environment(cls) -> AmqpSubscription | None:
        url = os.environ.get(URL_VARIABLE)
        return cls(url, os.environ.get(QUEUE_VARIABLE) or DEFAULT_QUEUE) if url else None

    def describe(self) -> dict:
        return {"destination": "amqp", "url": masked(self.url), "queue": self.queue, "published": self.published}

    def __call__(self, messages: list[dict]) -> None:
        with self._lock:
            try:
                self._publish(messages)
            except (pika.exceptions.AMQPError, OSError):
                self._close()
                try:
                    self._connect()
                    self._publish(messages)  # at least once: the queue's consumer dedups by message id
                except (pika.exceptions.AMQPError, OSError, SubscriptionError) as exc:
                    print(
                        f"simulators: {len(messages)} commerce message(s) not published to {masked(self.url)} "
                        f"queue {self.queue}: {type(exc).__name__}; they stay readable at /messages",
                        file=sys.stderr,
                        flush=True,
                    )

    def close(self) -> None:
        with self._lock:
            self._close()

    def _publish(self, messages: list[dict]) -> None:
        if self._channel is None:
            raise SubscriptionError("not connected")
        for message in messages:
            self._channel.basic_publish(
                exchange="",
                routing_key=self.queue,
                body=orjson.dumps(message),
                properties=pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=str(message.get("id")),
                    type=str(message.get("type")),
                ),
                mandatory=True,
            )
            self.published += 1

    def _connect(self) -> None:
        try:
            parameters = pika.URLParameters(self.url)
        except (ValueError, TypeError):
            raise SubscriptionError(f"{URL_VARIABLE} is not a valid AMQP URL: {masked(self.url)}") from None
        parameters.heartbeat = 0  # the publisher can be idle for long; a dead connection is reopened on use
        try:
            self._connection = pika.BlockingConnection(parameters)
            self._channel = self._connection.channel()
            self._channel.queue_declare(self.queue, durable=True)
            self._channel.confirm_delivery()
        except pika.exceptions.AMQPError as exc:
            self._close()
            raise SubscriptionError(
                f"cannot reach the message broker at {masked(self.url)} ({URL_VARIABLE}): {type(exc).__name__}"
            ) from None

    def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                connection.close()
