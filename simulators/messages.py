"""commercetools Messages: the change log that churn, deletes and injections write.

Every change of a product or inventory entry records one message, shaped like commercetools'
Messages API: ``id``, ``version`` (always 1), ``sequenceNumber`` (per resource: 1, 2, 3, ...),
``resource`` (``{typeId, id}``), ``resourceVersion`` (the resource's version after the change),
``resourceUserProvidedIdentifiers``, ``type``, ``createdAt``/``lastModifiedAt`` and the type's payload.
Messages of one churn share their ``createdAt``, so readers must page by ``(createdAt, id)``.

:class:`MessageLog` keeps the messages in a queryable collection (``GET /commerce/{project}/messages``)
and hands every newly recorded batch to its subscribers, e.g. a message-queue destination.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any, Protocol

from simulators.world import uuid4_str

Subscriber = Callable[[list[dict]], None]

PRODUCT = "product"
INVENTORY_ENTRY = "inventory-entry"


class MessageStore(Protocol):
    """Where messages are kept: the commerce ``Collection`` of message records."""

    def add_many(self, docs: list[dict]) -> Any: ...

    def clear(self) -> None: ...


def _identifiers(type_id: str, doc: dict) -> dict:
    if type_id == INVENTORY_ENTRY:
        return {k: v for k, v in (("key", doc.get("key")), ("sku", doc.get("sku"))) if v is not None}
    return {"key": doc["key"]} if doc.get("key") is not None else {}


def _channel(doc: dict) -> dict:
    return {"supplyChannel": doc["supplyChannel"]} if doc.get("supplyChannel") else {}


def product_published(doc: dict) -> tuple[str, dict]:
    return "ProductPublished", {"productProjection": doc, "removedImageUrls": [], "scope": "All"}


def product_deleted(doc: dict) -> tuple[str, dict]:
    return "ProductDeleted", {"removedImageUrls": [], "currentProjection": doc}


def inventory_created(doc: dict) -> tuple[str, dict]:
    return "InventoryEntryCreated", {"inventoryEntry": doc}


def inventory_quantity_set(old: dict, new: dict) -> tuple[str, dict]:
    return "InventoryEntryQuantitySet", {
        "sku": new["sku"],
        **_channel(new),
        "oldQuantityOnStock": old["quantityOnStock"],
        "newQuantityOnStock": new["quantityOnStock"],
        "oldAvailableQuantity": old["availableQuantity"],
        "newAvailableQuantity": new["availableQuantity"],
    }


def inventory_deleted(doc: dict) -> tuple[str, dict]:
    return "InventoryEntryDeleted", {"sku": doc["sku"], **_channel(doc)}


class MessageLog:
    """The project's messages, their per-resource sequence numbers, and the subscribers to new ones."""

    def __init__(self, store: MessageStore, seed: int = 0) -> None:
        self.store = store
        self._seed = seed
        self._rng = random.Random(f"{seed}/messages")
        self._sequence: dict[str, int] = {}
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> None:
        """Call `callback` with every batch of new messages, right after they are recorded."""
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s is not callback]

    def clear(self, seed: int | None = None) -> None:
        """Forget every message and sequence number (a world reset); subscribers stay."""
        with self._lock:
            self.store.clear()
            self._sequence.clear()
            self._rng = random.Random(f"{self._seed if seed is None else seed}/messages")

    def message(self, type_id: str, doc: dict, change: tuple[str, dict], stamp: str, version: int) -> dict:
        """One message about resource `doc` (its state after the change, or before a delete)."""
        kind, payload = change
        with self._lock:
            sequence = self._sequence.get(doc["id"], 0) + 1
            self._sequence[doc["id"]] = sequence
            message_id = uuid4_str(self._rng)
        return {
            "id": message_id,
            "version": 1,
            "sequenceNumber": sequence,
            "resource": {"typeId": type_id, "id": doc["id"]},
            "resourceVersion": version,
            "resourceUserProvidedIdentifiers": _identifiers(type_id, doc),
            "type": kind,
            "createdAt": stamp,
            "lastModifiedAt": stamp,
            **payload,
        }

    def record(self, messages: list[dict]) -> None:
        """Store `messages`, then hand them to every subscriber."""
        if not messages:
            return
        with self._lock:
            self.store.add_many(messages)
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(messages)
